"""`evaluate` module for plain accuracy on stance label ids, so `evaluate.combine` works without the hub."""

import evaluate
from sklearn.metrics import accuracy_score

from train.evaluation import metric_info

_DESCRIPTION = """
Share of examples whose predicted stance label id equals the gold one. Load it by path, offline:
evaluate.load("metrics/stance_accuracy"); combine it with evaluate.combine(["metrics/stance_f1", ...]).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted label ids.
    references (list of int): gold label ids.
Returns:
    accuracy (float in [0, 1]).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class StanceAccuracy(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references):
        return {"accuracy": float(accuracy_score(references, predictions))}
