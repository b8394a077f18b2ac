"""A ridge-regression classifier, fitted in closed form: the learned layers' model.

One-vs-rest least squares with targets +1/-1, solved in its dual form
`W = X^T (X X^T + lambda I)^-1 Y`: with ~1,500 training rows and ~4,400 features that is one
1,500 x 1,500 solve, so the model is fitted when the process starts (or loaded from the cache
of an earlier fit, `understanding.fitted`) from whatever examples the config holds, and a
user's new task type needs no training step.
Rows are weighted so every class counts the same however many examples it has: a user's new
type with 8 examples is not drowned by the shipped types' hundreds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


class RidgeClassifier:
    """Scores per class for a feature vector; fitted once (or loaded), read by many threads."""

    def __init__(self, classes: Sequence[str], weights: Matrix) -> None:
        if not classes or weights.shape[1] != len(classes):
            raise ValueError(f"{len(classes)} classes for weights of shape {weights.shape}")
        self.classes: tuple[str, ...] = tuple(classes)
        self.weights: Matrix = weights

    @classmethod
    def fit(cls, features: Matrix, labels: Sequence[str], *, penalty: float) -> RidgeClassifier:
        """The classifier that best separates `labels` given `features` (one row per label)."""
        classes = tuple(dict.fromkeys(labels))
        if not classes:
            raise ValueError("a classifier needs at least one labelled example")
        index = {name: i for i, name in enumerate(classes)}
        y = np.array([index[label] for label in labels])
        counts = np.bincount(y, minlength=len(classes)).astype(np.float64)
        # Weighted least squares = ordinary least squares on rows scaled by sqrt(weight).
        scale = np.sqrt(len(y) / (len(classes) * counts[y]))[:, None]
        x = (features * scale).astype(np.float32)
        targets = -np.ones((len(y), len(classes)))
        targets[np.arange(len(y)), y] = 1.0
        # The gram matrix in float32 (6x faster than float64 at this size), the solve in float64.
        gram = (x @ x.T).astype(np.float64) + penalty * np.eye(len(y))
        dual = np.linalg.solve(gram, targets * scale).astype(np.float32)
        return cls(classes, x.T @ dual)

    def scores(self, vector: npt.NDArray[np.float32]) -> dict[str, float]:
        """Each class's score (about +1 for a clear member, -1 for a clear non-member)."""
        raw = vector @ self.weights
        return {name: float(raw[i]) for i, name in enumerate(self.classes)}

    def ranked(self, vector: npt.NDArray[np.float32], temperature: float) -> list[tuple[str, float]]:
        """Classes best first, each with its softmax probability at `temperature`."""
        scores = self.scores(vector)
        names = sorted(scores, key=lambda n: scores[n], reverse=True)
        values = np.array([scores[n] for n in names])
        weights = np.exp((values - values[0]) / temperature)
        probabilities = weights / weights.sum()
        return [(n, float(p)) for n, p in zip(names, probabilities, strict=True)]
