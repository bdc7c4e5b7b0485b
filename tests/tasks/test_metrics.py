import math

import pytest
import torch

from tasks.metrics import class_mean, group_means, harmonic_mean, mean_std, per_class_accuracy


def test_mean_and_population_std():
    mean, std = mean_std([0.80, 0.86, 0.83])
    assert mean == pytest.approx(0.83)
    assert std == pytest.approx(math.sqrt((0.03**2 + 0.03**2 + 0) / 3))  # ddof 0, not 1
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="at least one value"):
        mean_std([])


def test_harmonic_mean_of_base_and_novel():
    assert harmonic_mean(0.9, 0.6) == pytest.approx(2 * 0.9 * 0.6 / 1.5)  # 0.72
    assert harmonic_mean(0.9, 0.6) == pytest.approx(0.72)
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_per_class_accuracy_from_confusion_rows():
    confmat = torch.tensor([[3, 1, 0], [0, 0, 0], [1, 1, 2]])  # class 1 has no test clip
    assert per_class_accuracy(confmat) == [0.75, None, 0.5]


def test_group_and_class_means_skip_classes_without_clips():
    per_class = [1.0, 0.5, None, 0.0, 0.25]
    assert class_mean(per_class) == pytest.approx((1.0 + 0.5 + 0.0 + 0.25) / 4)
    means = group_means(per_class, {"head": [0, 1], "tail": [2, 3], "few": [2]})
    assert means == {"head": 0.75, "tail": 0.0, "few": None, "all": pytest.approx(0.4375)}
