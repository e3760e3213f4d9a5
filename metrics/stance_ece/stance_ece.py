"""`evaluate` module for expected calibration error of stance probabilities, computed by train.evaluation."""

import evaluate
import numpy as np

from train.evaluation import ECE_BINS, metric_info, reliability

_DESCRIPTION = """
Expected calibration error of the top-class confidence over equal-width bins (default 10): the mean gap
between accuracy and confidence, weighted by the share of examples in each bin. Load it by path, offline:
evaluate.load("metrics/stance_ece").
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of float): class probabilities per example, in train.data.LABELS order.
    references (list of int): gold label ids.
    n_bins (int): number of equal-width confidence bins (default 10).
Returns:
    ece (float in [0, 1]).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class StanceECE(evaluate.Metric):
    def _info(self):
        citation = "Guo et al., On Calibration of Modern Neural Networks (ICML 2017)."
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, citation, probabilities=True)

    def _compute(self, predictions, references, n_bins=ECE_BINS):
        return {"ece": reliability(np.asarray(predictions, dtype=float), references, n_bins)["ece"]}
