"""Understanding a request: which task type it asks for, decided in confident layers.

Dependencies point one way: understanding -> providers -> config (nothing from nodes,
graph, services or ui).
"""

from understanding.classifier import TaskClassifier
from understanding.keywords import keyword_scores
from understanding.types import LAYERS, Classification, Layer, family

__all__ = ["LAYERS", "Classification", "Layer", "TaskClassifier", "family", "keyword_scores"]
