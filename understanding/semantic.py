"""The semantic layer: which task's example requests a prompt resembles most.

Averaged word embeddings of short requests are dominated by the words every request shares
("a", "for", "the", "write"), so every vector is first centred on the mean of the example
vectors: what is left is what distinguishes one request from another. A task's score is the
mean cosine of its `TOP_K` nearest examples (one stray example cannot decide alone, and a
task with many examples gains nothing from their number); the scores go through a softmax
whose temperature was set on the dev split, giving a confidence in 0..1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from understanding.embedding import Embedder, Vector
from understanding.types import Classification

TOP_K = 3
TEMPERATURE = 0.05


class SemanticIndex:
    """Example requests per task type, embedded once."""

    def __init__(self, embedder: Embedder, examples: dict[str, tuple[str, ...]]) -> None:
        self._embedder = embedder
        self.tasks = tuple(task for task, texts in examples.items() if texts)
        texts = [text for task in self.tasks for text in examples[task]]
        self._labels = np.array([i for i, task in enumerate(self.tasks) for _ in examples[task]])
        raw = embedder.embed_many(texts)
        self._mean: Vector = raw.mean(axis=0) if len(texts) else np.zeros(embedder.dim, np.float32)
        self._matrix = _unit_rows(raw - self._mean)

    def vector(self, text: str) -> Vector:
        """The centred unit vector of `text`, comparable with the examples and other prompts."""
        vector: Vector = _unit_rows((self._embedder.embed(text) - self._mean)[None, :])[0]
        return vector

    def scores(self, text: str) -> dict[str, float]:
        """Mean cosine of each task's TOP_K nearest examples to `text`."""
        sims = self._matrix @ self.vector(text)
        out: dict[str, float] = {}
        for i, task in enumerate(self.tasks):
            mine = np.sort(sims[self._labels == i])[::-1][:TOP_K]
            out[task] = float(mine.mean())
        return out

    def guess(self, text: str) -> Classification | None:
        """The most similar task, its softmax confidence and the runner-up; None without examples."""
        if not self.tasks:
            return None
        scores = self.scores(text)
        ranked = sorted(scores, key=lambda t: scores[t], reverse=True)
        values = np.array([scores[t] for t in ranked])
        weights = np.exp((values - values[0]) / TEMPERATURE)
        confidence = float(weights[0] / weights.sum())
        runner_up = ranked[1] if len(ranked) > 1 else None
        return Classification(ranked[0], "semantic", round(confidence, 3), runner_up)


def _unit_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, np.float32(1.0))).astype(np.float32)
