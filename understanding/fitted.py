"""The learned layers, fitted once per process and once per machine.

Fitting the semantic layer and the turn model to the training set takes 1-2 s of CPU. Every
process of the app, every `modelyard ask` and every test router would pay it, on a thread that
competes with the request path. So a fit is kept:

- in memory, for every classifier of the process built on the same embedder (a test suite or
  a server with several routers fits once);
- on disk, as plain arrays (`numpy.savez`, no pickle), in `$MODELYARD_CACHE_DIR`, else
  `$XDG_CACHE_HOME/modelyard`, else `~/.cache/modelyard`: a later process loads it in
  milliseconds. A cold fit runs in a child process (`understanding.fit_process`) that writes
  this file, so its CPU does not compete with the parent's requests for the GIL.

The key is a hash of everything a fit depends on: the source of this package (features, rules,
constants), the training data, the routing config (tasks, keywords, examples, thresholds) and
the versions of numpy and wordllama. A changed input is a new key, so a stale fit is never
used; an unreadable or unwritable cache only costs a refit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from config.schema import AppConfig
from understanding.embedding import Embedder
from understanding.linear import RidgeClassifier
from understanding.semantic import SemanticIndex
from understanding.training import TRAIN_PATH
from understanding.turn_model import TurnModel

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).parent


@dataclass(frozen=True)
class Fitted:
    """What a fit produces; read-only, shared by every classifier that asks for the same key."""

    index: SemanticIndex
    turns: TurnModel | None


_memory: dict[tuple[str, int], Fitted] = {}
_lock = threading.Lock()


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where fits are kept on disk."""
    env = os.environ if env is None else env
    if env.get("MODELYARD_CACHE_DIR"):
        return Path(env["MODELYARD_CACHE_DIR"]).expanduser()
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelyard"


def fit_key(config: AppConfig, train_path: Path = TRAIN_PATH) -> str:
    """The hash of everything a fit depends on."""
    digest = hashlib.sha256()
    for source in sorted(PACKAGE.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    digest.update(train_path.read_bytes() if train_path.exists() else b"no training set")
    digest.update(config.routing.model_dump_json().encode())
    for package in ("numpy", "wordllama"):
        digest.update(f"{package}={_version(package)}".encode())
    return digest.hexdigest()[:32]


def is_cached(config: AppConfig) -> bool:
    """Whether this machine has the fit for `config` on disk (a process then loads it in ms)."""
    return _path(cache_dir(), fit_key(config)).exists()


def _path(directory: Path, key: str) -> Path:
    return directory / f"understanding-{key}.npz"


def fitted_layers(
    config: AppConfig,
    embedder: Embedder,
    fit: Callable[[], Fitted],
    *,
    directory: Path | None = None,
    elsewhere: Callable[[Path], bool] | None = None,
) -> Fitted:
    """The fit for `config`: from memory, else from disk, else `fit()` (then kept in both).

    `elsewhere(path)`, if given, is tried before `fit()`: it writes the fit to `path` some other
    way (a child process, `understanding.fit_process`) and says whether it did.
    """
    key = fit_key(config)
    with _lock:  # two classifiers built at once fit once
        found = _memory.get((key, id(embedder)))
        if found is not None:
            return found
        path = _path(directory or cache_dir(), key)
        found = _load(path, embedder)
        if found is None and elsewhere is not None and elsewhere(path):
            found = _load(path, embedder)
        if found is None:
            found = fit()
            save(path, found)
        _memory[(key, id(embedder))] = found
        return found


def _load(path: Path, embedder: Embedder) -> Fitted | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            model = (
                RidgeClassifier(data["semantic_classes"].tolist(), data["semantic_weights"])
                if data["semantic_classes"].size
                else None
            )
            index = SemanticIndex(embedder, data["semantic_mean"], model)
            turns = None
            if data["kind_classes"].size:
                targets = (
                    RidgeClassifier(data["target_classes"].tolist(), data["target_weights"])
                    if data["target_classes"].size
                    else None
                )
                news = (
                    RidgeClassifier(data["new_classes"].tolist(), data["new_weights"])
                    if data["new_classes"].size
                    else None
                )
                kinds = RidgeClassifier(data["kind_classes"].tolist(), data["kind_weights"])
                turns = TurnModel(
                    index.vector,
                    data["signal_names"].tolist(),
                    kinds,
                    targets,
                    news,
                    data["context_names"].tolist(),
                )
    except FileNotFoundError:
        return None
    except (OSError, KeyError, ValueError) as exc:  # corrupt or from another layout: refit
        log.info("refitting the understanding layers: %s is unreadable (%s)", path, exc)
        return None
    return Fitted(index, turns)


def save(path: Path, fitted: Fitted) -> None:
    """Keep `fitted` at `path` (a failure to write is logged: the next process fits again)."""
    empty = np.zeros((0, 0), np.float32)
    model, turns = fitted.index.model, fitted.turns
    arrays = {
        "semantic_mean": fitted.index.mean,
        "semantic_classes": np.array(model.classes if model else [], dtype=str),
        "semantic_weights": model.weights if model else empty,
        "kind_classes": np.array(turns.kinds.classes if turns else [], dtype=str),
        "kind_weights": turns.kinds.weights if turns else empty,
        "signal_names": np.array(turns.signal_names if turns else [], dtype=str),
        "target_classes": np.array(turns.targets.classes if turns and turns.targets else [], dtype=str),
        "target_weights": turns.targets.weights if turns and turns.targets else empty,
        "new_classes": np.array(turns.news.classes if turns and turns.news else [], dtype=str),
        "new_weights": turns.news.weights if turns and turns.news else empty,
        "context_names": np.array(turns.context_names if turns else [], dtype=str),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a reader never sees half a file, whoever writes at once.
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        os.replace(handle.name, path)
    except OSError as exc:
        log.info("the understanding layers were fitted but not cached (%s): %s", path, exc)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"
