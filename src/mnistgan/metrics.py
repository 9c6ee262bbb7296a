"""Sample-quality metrics from classifier outputs. Pure numpy: testable without TensorFlow.

- Frechet distance between Gaussians fitted to classifier features (FID's formula, with the
  data's classifier's penultimate layer in place of Inception's): lower is better.
- Inception-score-style score, exp(E_x KL(p(y|x) || p(y))): 1 (useless) to K, the number of
  classes (confident and balanced over all of them; 10 on MNIST).
- Mode coverage: the share of samples classified as each class, and the normalized entropy of
  those shares (1.0 = perfectly balanced, 0 = one class only).
- Confident share: samples whose top class probability is at least 0.9.
- Memorization: the distance from each sample to its nearest training image, relative to the
  same distance for held-out test images (a ratio well below 1 means copies of training data).
"""

from __future__ import annotations

import numpy as np

CONFIDENT = 0.9


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, D) features."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError("need at least two feature vectors of shape (N, D)")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)).

    Tr((C1 C2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    matrix C1^(1/2) C2 C1^(1/2), which has the same spectrum and avoids a general matrix sqrt.
    """
    w, v = np.linalg.eigh(cov1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)


def inception_score(probs: np.ndarray) -> float:
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    marginal = p.mean(axis=0, keepdims=True)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def class_shares(probs: np.ndarray) -> np.ndarray:
    """The share of samples whose most likely class is each class (digit); sums to 1."""
    counts = np.bincount(np.argmax(probs, axis=1), minlength=probs.shape[1])
    return counts / counts.sum()


def normalized_entropy(shares: np.ndarray) -> float:
    """The entropy of the class shares over its most, log K: 1 when every class is as common."""
    s = np.asarray(shares, dtype=np.float64)
    k = len(s)
    s = s[s > 0]
    return max(0.0, float(-(s * np.log(s)).sum() / np.log(k)))  # max: no "-0.0" for one class


def confident_share(probs: np.ndarray, threshold: float = CONFIDENT) -> float:
    return float(np.mean(np.max(probs, axis=1) >= threshold))


def pixel_spread(images: np.ndarray) -> float:
    """How much a set of images varies: the per-pixel standard deviation across them, averaged
    over the pixels (grey levels). Identical images give 0."""
    return float(images.reshape(len(images), -1).astype(np.float32).std(axis=0).mean())


def digit_diversity(images: np.ndarray, asked: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
                    classes: int) -> list[float]:
    """Per class (0 to classes - 1): the pixel spread of the samples asked to be that class over that of
    the real images of it (1 = as varied as the real ones, near 0 = one image per class; nan if absent)."""
    spreads = [pixel_spread(real[real_labels == d]) if np.sum(real_labels == d) > 1 else 0.0 for d in range(classes)]
    return [pixel_spread(images[asked == d]) / spread if np.any(asked == d) and spread > 0 else float("nan")
            for d, spread in enumerate(spreads)]


def nearest_distances(queries: np.ndarray, reference: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Euclidean distance from each query image to its nearest reference image (pixels in [0, 1]).

    Exact: on the raw grey levels (0-255) every term of |a|^2 - 2ab + |b|^2 is an integer below
    255^2 * 784 < 2^26, so float64 holds every partial sum exactly whatever order the CPU's
    matrix kernels add in; an image is at distance 0 from itself on every machine. (float32,
    with its 24-bit mantissa, rounds those sums, and how depends on the kernels: an AVX2 and
    an AVX-512 machine disagreed in the third decimal.)
    """
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    r_sq = np.einsum("ij,ij->i", r, r)
    out = np.empty(len(q), np.float64)
    for i in range(0, len(q), chunk):
        block = q[i : i + chunk]
        d2 = np.einsum("ij,ij->i", block, block)[:, None] - 2 * block @ r.T + r_sq[None, :]
        out[i : i + chunk] = np.sqrt(np.clip(d2.min(axis=1), 0, None)) / 255.0
    return out
