"""A cold fit of the learned layers, run in a child process.

A fit takes ~5 s of CPU. In the app's own process it holds the GIL for most of that time, so a
request streaming meanwhile (a reply, a cloud fallback) slows to a token every 40-50 ms. The child
writes the fit to the machine's cache file (`understanding.fitted`), which the parent then loads in
milliseconds. Any failure (no interpreter, a full disk, a crash) leaves the fit to the parent's
thread, as before.

Run as `python -m understanding.fit_process PATH` with the config as JSON on stdin.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from config.schema import AppConfig, CloudSecrets

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
FIT_TIMEOUT_S = 180.0


def fit_in_child(config: AppConfig, path: Path, timeout: float = FIT_TIMEOUT_S) -> bool:
    """Fit for `config` in a child process that writes `path`; True when the file is there."""
    # The fit depends on the routing only; the child never needs a key.
    payload = config.model_copy(update={"secrets": CloudSecrets()}).model_dump_json()
    command = [sys.executable, "-m", "understanding.fit_process", str(path)]
    try:
        done = subprocess.run(
            command, input=payload, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("fitting the understanding layers here instead of in a child process: %s", exc)
        return False
    if done.returncode != 0 or not path.exists():
        tail = done.stderr.strip().splitlines()[-1:] or ["no error text"]
        log.info("the child fit of the understanding layers failed (%s); fitting here", tail[0])
        return False
    return True


def main() -> None:
    """The child: fit for the config on stdin and write the file named by the argument."""
    # Imported here: the parent imports this module for `fit_in_child` alone.
    from understanding.classifier import TaskClassifier
    from understanding.embedding import load_wordllama
    from understanding.fitted import save

    config = AppConfig.model_validate_json(sys.stdin.read())
    embedder = load_wordllama()
    save(Path(sys.argv[1]), TaskClassifier(config, learn=False).fit(embedder))


if __name__ == "__main__":
    main()
