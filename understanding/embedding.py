"""Sentence embeddings from WordLlama's shipped weights, loaded once, offline, off the request path.

WordLlama 0.4.0.post1 ships its 16 MB embedding matrix and its tokenizer config inside the
wheel, but its loader looks for the tokenizer in `<package>/tokenizer/` (the folder is
`tokenizers/`) and then downloads from the Hugging Face hub. Passing the package's own
folder as `cache_dir` makes it find the tokenizer at `<cache_dir>/tokenizers/`, and
`disable_download=True` turns a missing file into FileNotFoundError instead of a download:
nothing is fetched at run time, whatever the environment says.

Embedding is ours, not `WordLlamaInference.embed`: `Tokenizer.encode_batch` starts the
tokenizers thread pool, and a process that forks after that (every subprocess, e.g. the
Mermaid worker) makes the Rust library print a warning on stderr. A single `encode` and a
mean of rows costs ~0.1 ms and never starts the pool.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]
WORDLLAMA_CONFIG = "l2_supercat"
WORDLLAMA_DIM = 256  # the dimension whose weights the wheel ships


class Embedder:
    """Text -> unit vector: the mean of the token rows of WordLlama's embedding matrix."""

    def __init__(self, matrix: npt.NDArray[np.float32], encode: Callable[[str], list[int]]) -> None:
        self._matrix = matrix
        self._encode = encode

    def embed(self, text: str) -> Vector:
        """The unit-length embedding of `text` (zeros for text without tokens)."""
        ids = self._encode(text)
        if not ids:
            return np.zeros(self._matrix.shape[1], dtype=np.float32)
        vector: Vector = self._matrix[ids].mean(axis=0)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed_many(self, texts: list[str] | tuple[str, ...]) -> npt.NDArray[np.float32]:
        """One row per text."""
        return np.stack([self.embed(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    @property
    def dim(self) -> int:
        """Length of every vector."""
        return int(self._matrix.shape[1])


_loaded: Embedder | None = None
_load_lock = threading.Lock()


def load_wordllama() -> Embedder:
    """The weights and tokenizer shipped in the wordllama wheel, loaded once per process."""
    global _loaded
    with _load_lock:  # every classifier of the process shares one embedder (16 MB, read-only)
        if _loaded is None:
            _loaded = _load_wordllama()
        return _loaded


def _load_wordllama() -> Embedder:
    """Load the weights and tokenizer shipped in the wordllama wheel; never downloads."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import wordllama  # 1.3 s of imports (numpy, safetensors, tokenizers): only here

    # wordllama calls logging.basicConfig(level=INFO) on import: undo it, logging is the app's to set.
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    package = Path(wordllama.__file__).parent
    model = wordllama.WordLlama.load(
        WORDLLAMA_CONFIG, dim=WORDLLAMA_DIM, cache_dir=package, disable_download=True
    )
    tokenizer = model.tokenizer
    matrix = np.ascontiguousarray(model.embedding, dtype=np.float32)

    def encode(text: str) -> list[int]:
        ids: list[int] = tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    return Embedder(matrix, encode)


EXIT_GRACE_S = 15.0  # the longest a process's exit waits for a load still running (a cold fit: ~5 s)


class BackgroundLoad:
    """Runs a loader once in a daemon thread; readers never wait unless they ask to."""

    def __init__(
        self, loader: Callable[[], Embedder], prepare: Callable[[Embedder], None], *, start: bool = True
    ) -> None:
        self._loader = loader
        self._prepare = prepare
        self._ready = threading.Event()
        self._done = threading.Event()
        self.embedder: Embedder | None = None
        self.error: str | None = None
        self.load_s: float | None = None
        # Daemon: a process that is done never waits for the load to be useful to it. But a thread
        # still inside the tokenizer or numpy when the interpreter finalizes can abort the process
        # ("FATAL: exception not rethrown"), so at exit the load gets a bounded grace to finish.
        self._thread = threading.Thread(target=self._run, name="understanding-embedding", daemon=True)
        if start:
            self._thread.start()
            atexit.register(self._finish_at_exit)

    def _finish_at_exit(self) -> None:
        self._done.wait(EXIT_GRACE_S)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            embedder = self._loader()
            self._prepare(embedder)
        except Exception as exc:  # any failure only turns the semantic layer off
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("semantic classification is off: the embedding model did not load (%s)", self.error)
        else:
            self.embedder = embedder
            self.load_s = time.perf_counter() - started
            self._ready.set()
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        """True once the embedder and everything prepared from it can be used."""
        return self._ready.is_set()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the load to end; True when it succeeded."""
        self._done.wait(timeout)
        return self._ready.is_set()
