"""Quality metrics on inputs whose answers are known exactly; no TensorFlow."""

import numpy as np
import pytest

from mnistgan import metrics


def test_frechet_distance_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((500, 6))
    mu, cov = metrics.feature_stats(f)
    assert metrics.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_for_diagonal_covariances():
    # For diagonal covariances: |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, 1.0])
    c1, c2 = np.diag([4.0, 1.0]), np.diag([1.0, 9.0])
    expected = 9.0 + (2 - 1) ** 2 + (1 - 3) ** 2
    assert metrics.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected)


def test_inception_score_bounds():
    one_hot_balanced = np.eye(10)[np.arange(100) % 10]
    assert metrics.inception_score(one_hot_balanced) == pytest.approx(10.0, rel=1e-6)
    assert metrics.inception_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)
    assert metrics.inception_score(np.eye(10)[np.zeros(50, int)]) == pytest.approx(1.0, rel=1e-6)


def test_coverage_and_entropy():
    probs = np.eye(10)[[0, 0, 1, 1]]
    shares = metrics.class_shares(probs)
    assert shares.tolist() == [0.5, 0.5] + [0.0] * 8
    assert metrics.normalized_entropy(shares) == pytest.approx(np.log(2) / np.log(10))
    assert metrics.normalized_entropy(np.full(10, 0.1)) == pytest.approx(1.0)
    single = metrics.normalized_entropy(metrics.class_shares(np.eye(10)[[8, 8, 8]]))
    assert f"{single:.3f}" == "0.000"  # printed without a minus sign


def test_confident_share_counts_top_probability_at_least_threshold():
    probs = np.array([[0.95, 0.05] + [0] * 8, [0.6, 0.4] + [0] * 8, [0.9, 0.1] + [0] * 8])
    assert metrics.confident_share(probs) == pytest.approx(2 / 3)


def test_nearest_distances_are_exact_on_any_cpu():
    # Digit-like images (mostly 0, strokes near 255): sums of squares near 255^2 * 200, beyond
    # float32's exact integers, so float32 arithmetic would put a copy at a non-zero distance
    # that depends on the CPU's matrix kernels.
    rng = np.random.default_rng(1)
    ref = np.where(rng.random((300, 28, 28)) < 0.25, rng.integers(200, 256, (300, 28, 28)), 0).astype(np.uint8)
    queries = np.concatenate([ref[[3, 7, 299]], np.zeros((1, 28, 28), np.uint8)])
    d = metrics.nearest_distances(queries, ref, chunk=2)
    assert d[:3].tolist() == [0.0, 0.0, 0.0]
    brute = np.sqrt(((ref.reshape(300, -1).astype(np.int64)) ** 2).sum(axis=1)).min() / 255.0
    assert d[3] == brute


def test_pixel_spread_is_zero_for_copies_and_grows_with_variety():
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    assert metrics.pixel_spread(np.stack([one] * 20)) == 0.0
    half = np.stack([np.zeros((28, 28), np.uint8), np.full((28, 28), 200, np.uint8)] * 10)
    assert metrics.pixel_spread(half) == pytest.approx(100.0)  # two values 200 apart: std 100
