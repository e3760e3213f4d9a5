"""The one macro-F1 every part of the package scores with (training's dev score, evaluation, ensemble weights)."""

from __future__ import annotations

from typing import Sequence

from sklearn.metrics import f1_score

from .data import LABELS


def macro_f1(gold: Sequence[int], predicted: Sequence[int], num_labels: int = len(LABELS)) -> float:
    """Macro-F1 over every label id (an absent label counts as F1 0)."""
    return float(f1_score(gold, predicted, labels=list(range(num_labels)), average="macro", zero_division=0))
