"""Who may reach the chat: the one local user on loopback, a password anywhere else.

The chat app logs everyone who reaches it in as the local user (no login page). That is only
safe on loopback. Bound to any other address it uses Chainlit's password login instead, with
the password from the environment, and refuses to start without one.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

PASSWORD_ENV = "MODELYARD_PASSWORD"
USERNAME_ENV = "MODELYARD_USERNAME"
DEFAULT_USERNAME = "modelyard"
MIN_PASSWORD_CHARS = 12


class ExposureError(RuntimeError):
    """The app would be reachable from other machines without a password."""


@dataclass(frozen=True)
class Access:
    """How users log in: `local` (loopback, no login page) or `password`."""

    mode: str
    username: str = DEFAULT_USERNAME
    _password: str = ""

    def check(self, username: str, password: str) -> bool:
        """True for the configured user and password (constant-time compare)."""
        return self.mode == "password" and (
            hmac.compare_digest(username.encode(), self.username.encode())
            & hmac.compare_digest(password.encode(), self._password.encode())
        )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def access_for(host: str, env: Mapping[str, str]) -> Access:
    """The login the app needs when it listens on `host`; ExposureError when it cannot have one."""
    if is_loopback(host):
        return Access("local")
    password = env.get(PASSWORD_ENV, "")
    if len(password) < MIN_PASSWORD_CHARS:
        problem = "is not set" if not password else f"is shorter than {MIN_PASSWORD_CHARS} characters"
        raise ExposureError(
            f"refusing to serve the chat on {host}: it would be reachable from other machines and "
            f"{PASSWORD_ENV} {problem}. Set {PASSWORD_ENV} (and optionally {USERNAME_ENV}) to require "
            "a login, or bind to 127.0.0.1."
        )
    return Access("password", env.get(USERNAME_ENV) or DEFAULT_USERNAME, password)
