"""The process-wide collaborators of the nodes and how a run finds them."""

from services.container import Services
from services.context import Context
from services.registry import install, services_for, uninstall

__all__ = ["Context", "Services", "install", "services_for", "uninstall"]
