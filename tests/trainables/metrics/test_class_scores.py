"""Per-class audio and visual segment F (``class_scores``), pooled over videos and segments."""

import numpy as np
import pytest

from trainables.tasks.avvp.classes import LLP_CLASSES
from trainables.tasks.avvp.metrics import class_scores, metric_name


def test_per_class_f_by_hand():
    gt_a = np.zeros((2, 10, 25), bool)
    gt_v = np.zeros((2, 10, 25), bool)
    gt_a[0, 0:4, 0] = True          # Speech: 4 true audio segments in video 0
    gt_a[1, 0:2, 0] = True          # and 2 in video 1
    gt_v[:, :, 3] = True            # Dog visible everywhere (20 segments)
    pred_a, pred_v = gt_a.copy(), np.zeros_like(gt_v)
    pred_a[0, :, 0] = False
    pred_a[0, 2:6, 0] = True        # video 0: 2 of 4 right, 2 false positives; video 1 exact
                                    # -> tp 4, fp 2, fn 2 overall
    pred_v[0, :, 3] = True          # Dog: 10 of 20 found
    pred_a[1, 5, 5] = True          # Frying_(food): one false positive, no truth
    s = class_scores(pred_a, pred_v, gt_a, gt_v)
    assert s["class_A/Speech"] == pytest.approx(100 * 2 * 4 / (2 * 4 + 2 + 2))
    assert s["class_V/Dog"] == pytest.approx(100 * 2 * 10 / (2 * 10 + 0 + 10))
    assert s["class_A/Frying_food"] == 0.0
    # Classes with no predicted and no true segment are left out of that modality.
    assert "class_V/Speech" not in s and "class_A/Dog" not in s and len(s) == 3


def test_metric_names_are_mlflow_safe_and_distinct():
    names = [metric_name(c) for c in LLP_CLASSES]
    assert len(set(names)) == 25 and "Frying_food" in names
    assert all(all(ch.isalnum() or ch in "_-. :/" for ch in n) for n in names)
