"""`evaluate` module for stance F1: macro-F1, SemEval-2016 F_avg and per-class F1, computed by train.evaluation."""

import evaluate

from train.evaluation import f_avg, macro_f1, metric_info, per_class

_DESCRIPTION = """
Macro-F1 over the four stance labels (pro_ukraine, pro_russia, neutral, none; an absent label counts as 0),
F_avg = mean F1 of pro_ukraine and pro_russia (SemEval-2016 Task 6 style), and F1 of each label.
Load it by path, offline: evaluate.load("metrics/stance_f1").
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted label ids, in train.data.LABELS order.
    references (list of int): gold label ids, in the same order.
Returns:
    macro_f1, f_avg, and f1_<label> for each label (floats in [0, 1]).
Examples:
    >>> metric = evaluate.load("metrics/stance_f1")
    >>> metric.compute(predictions=[0, 1, 2, 3], references=[0, 1, 2, 3])["macro_f1"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class StanceF1(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, "Mohammad et al., SemEval-2016 Task 6: Detecting Stance in Tweets.")

    def _compute(self, predictions, references):
        result = {"macro_f1": macro_f1(references, predictions), "f_avg": f_avg(references, predictions)}
        result.update({f"f1_{name}": row["f1"] for name, row in per_class(references, predictions).items()})
        return result
