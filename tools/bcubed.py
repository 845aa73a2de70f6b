"""BCubed precision and recall of a clustering against the truth, for the benchmarks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def bcubed(joint: npt.NDArray[np.float64]) -> tuple[float, float]:
    """(precision, recall) from a contingency table: joint[truth, cluster] = how much of the truth's
    items (counts, or time) went to the cluster. (0, 0) when it is empty."""
    total = joint.sum()
    if not total:
        return 0.0, 0.0
    precision = (joint**2 / np.maximum(joint.sum(axis=0, keepdims=True), 1)).sum() / total
    recall = (joint**2 / np.maximum(joint.sum(axis=1, keepdims=True), 1)).sum() / total
    return float(precision), float(recall)
