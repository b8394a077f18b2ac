"""The semantic layer: a model fitted to example requests per task type says which one a prompt is.

Each request becomes its WordLlama embedding (what it means: "tables a dentist needs" is near
"database schema") beside its hashed words (`understanding.features`: the one word that
decides, such as "tickets"). Averaged embeddings of short requests are dominated by the words
every request shares, so they are first centred on the mean of the examples. A ridge
classifier (`understanding.linear`) fitted to the examples scores each task; a softmax at
`TEMPERATURE` turns the scores into a confidence in 0..1. The weights and temperature were
chosen on the dev split (`python -m understanding.evaluate --split dev`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from understanding.embedding import Embedder, Vector
from understanding.features import lexical_vector
from understanding.linear import RidgeClassifier
from understanding.types import Classification

LEXICAL_WEIGHT = 2.0  # words count twice the embedding: they carry the deciding word
PENALTY = 0.3
TEMPERATURE = 0.15


class SemanticIndex:
    """The classifier fitted to example requests per task type, and the embedding it reads."""

    def __init__(self, embedder: Embedder, mean: Vector, model: RidgeClassifier | None) -> None:
        self._embedder = embedder
        self.mean = mean
        """The mean embedding of the examples: every vector is centred on it."""
        self.model = model

    @classmethod
    def fit(cls, embedder: Embedder, examples: dict[str, tuple[str, ...]]) -> SemanticIndex:
        """Fit the classifier to `examples` (task type -> requests)."""
        texts = [text for task in examples for text in examples[task]]
        labels = [task for task in examples for _ in examples[task]]
        if not texts:
            return cls(embedder, np.zeros(embedder.dim, np.float32), None)
        raw = embedder.embed_many(texts)
        mean: Vector = raw.mean(axis=0)
        lexical = np.stack([lexical_vector(t) for t in texts])
        features = np.hstack([_unit_rows(raw - mean), LEXICAL_WEIGHT * lexical])
        return cls(embedder, mean, RidgeClassifier.fit(features, labels, penalty=PENALTY))

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task types that have examples."""
        return self.model.classes if self.model else ()

    def vector(self, text: str) -> Vector:
        """The centred unit embedding of `text`, comparable with other prompts' (cosine)."""
        centred = self._embedder.embed(text) - self.mean
        norm = float(np.linalg.norm(centred))
        return (centred / norm if norm > 0 else centred).astype(np.float32)

    def features(self, text: str) -> npt.NDArray[np.float32]:
        """What the classifier reads: the embedding beside the weighted hashed words."""
        return np.concatenate([self.vector(text), LEXICAL_WEIGHT * lexical_vector(text)])

    def probabilities(self, text: str) -> dict[str, float]:
        """Each task's softmax probability (they sum to 1); {} without examples."""
        return dict(self.model.ranked(self.features(text), TEMPERATURE)) if self.model else {}

    def guess(self, text: str) -> Classification | None:
        """The likeliest task, its confidence and the runner-up; None without examples."""
        if self.model is None:
            return None
        ranked = self.model.ranked(self.features(text), TEMPERATURE)
        runner_up = ranked[1][0] if len(ranked) > 1 else None
        return Classification(ranked[0][0], "semantic", round(ranked[0][1], 3), runner_up)


def _unit_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, np.float32(1.0))).astype(np.float32)
