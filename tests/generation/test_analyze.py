"""Dataset analysis: MMD and Davies-Bouldin against direct computations, and a run on the smoke demo set."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import davies_bouldin_score

from generation.analyze import (
    DatasetSpec,
    analyze_datasets,
    compare,
    davies_bouldin,
    linear_kernel,
    median_bandwidth,
    mmd2_unbiased,
    poly_kernel,
    rbf_kernel,
)
from generation.demo import build_demo

RNG = np.random.default_rng(0)
X, Y = RNG.normal(size=(6, 3)), RNG.normal(0.5, 1.0, size=(4, 3))


def k_lin(a, b):
    return float(np.dot(a, b))


def k_rbf(a, b, sigma=0.8):
    return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma**2))


def k_poly(a, b, d=3):
    return (float(np.dot(a, b)) / d + 1) ** 3


def direct_mmd2(x, y, k) -> float:
    """The unbiased estimator written as loops over pairs."""
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    if m == n:  # U-statistic over paired samples: the cross term leaves out i == j too
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n) if i != j) / (m * (m - 1))
    else:
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.parametrize(
    ("kernel", "direct"),
    [
        (linear_kernel, k_lin),
        (rbf_kernel(0.8), k_rbf),
        (poly_kernel(3), k_poly),
    ],
)
def test_mmd_matches_the_direct_computation_and_is_zero_for_identical_sets(kernel, direct):
    assert mmd2_unbiased(X, Y, kernel) == pytest.approx(direct_mmd2(X, Y, direct), abs=1e-12)
    assert mmd2_unbiased(X[:4], Y, kernel) == pytest.approx(direct_mmd2(X[:4], Y, direct), abs=1e-12)  # m == n
    assert mmd2_unbiased(X, X, kernel) == pytest.approx(0.0, abs=1e-12)


def test_linear_mmd_of_shifted_sets_approaches_the_squared_mean_difference():
    a, b = RNG.normal(size=(400, 2)), RNG.normal(size=(400, 2)) + np.array([1.0, 0.0])
    assert mmd2_unbiased(a, b, linear_kernel) == pytest.approx(1.0, abs=0.2)  # |mu_a - mu_b|^2 = 1


def test_median_bandwidth_is_the_median_pairwise_distance():
    z = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [0.0, 1.0]])
    dists = [math.dist(z[i], z[j]) for i in range(4) for j in range(i + 1, 4)]  # 5, 10, 1, 5, 4.24, 9.22
    assert median_bandwidth(z) == pytest.approx(float(np.median(dists)))


def test_davies_bouldin_matches_scikit_learn_and_its_definition():
    features = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [12.0, 0.0], [0.0, 20.0], [0.0, 23.0]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    centroids = np.array([[0.0, 1.0], [11.0, 0.0], [0.0, 21.5]])
    spread = np.array([1.0, 1.0, 1.5])  # mean distance of each class's points to its centroid
    r = [
        [(spread[i] + spread[j]) / np.linalg.norm(centroids[i] - centroids[j]) for j in range(3) if j != i]
        for i in range(3)
    ]
    by_hand = float(np.mean([max(ri) for ri in r]))
    assert davies_bouldin(features, labels) == pytest.approx(by_hand)
    assert davies_bouldin(features, labels) == davies_bouldin_score(features, labels)
    assert math.isnan(davies_bouldin(features, np.zeros(6, int)))  # one class: undefined


def test_compare_reports_every_kernel_and_states_the_bandwidth():
    report = compare({"real": (X, np.array([0, 1] * 3)), "synth": (Y, np.array([0, 1] * 2))}, reference="real")
    sigma = median_bandwidth(np.concatenate([X, Y]))
    assert report["rbf_sigma"] == sigma and f"sigma = {sigma:.6g}" in report["kernels"]["rbf"]
    assert report["datasets"]["real"]["mmd2"] == {"linear": 0.0, "rbf": 0.0, "poly": 0.0}
    assert report["datasets"]["synth"]["mmd2"]["rbf"] == pytest.approx(mmd2_unbiased(Y, X, rbf_kernel(sigma)))
    with pytest.raises(ValueError, match="reference 'nope' is not one of the datasets"):
        compare({"real": (X, np.zeros(6))}, reference="nope")


def test_dataset_specs():
    assert DatasetSpec.parse("ie=a/manifest.jsonl") == DatasetSpec("ie", Path("a/manifest.jsonl"))
    real = DatasetSpec("real", Path("splits/val1.txt"), Path("videos"))
    assert DatasetSpec.parse("real=splits/val1.txt@videos") == real
    with pytest.raises(ValueError, match=r"needs its video folder: real=val1.txt@ROOT"):
        DatasetSpec.parse("real=val1.txt")
    with pytest.raises(ValueError, match="use name=manifest.jsonl or name=list.txt@video_root"):
        DatasetSpec.parse("manifest.jsonl")


def test_analyze_the_smoke_demo_with_the_tiny_clip(tmp_path):
    build_demo(tmp_path / "smoke", "smoke", progress=False)
    d = tmp_path / "smoke"
    specs = [
        DatasetSpec.parse(f"ie={d}/synthetic/ie/manifest.jsonl"),
        DatasetSpec.parse(f"real={d}/real/splits/val1.txt@{d}/real/videos"),
    ]
    report = analyze_datasets(
        specs,
        "real",
        tmp_path / "out",
        labels=d / "labels.csv",
        arch="synthact-tiny",
        pretrained=None,
        num_frames=4,
        max_clips=24,
    )
    assert json.loads((tmp_path / "out/analysis.json").read_text()) == json.loads(json.dumps(report))
    assert report["datasets"]["ie"]["clips"] == 24 and report["datasets"]["real"]["clips"] == 16
    assert report["datasets"]["real"]["mmd2"] == {"linear": 0.0, "rbf": 0.0, "poly": 0.0}
    assert report["datasets"]["ie"]["mmd2"]["rbf"] != 0.0 and report["datasets"]["ie"]["davies_bouldin"] > 0
    assert (tmp_path / "out/tsne.png").stat().st_size > 1000
