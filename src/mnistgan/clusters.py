"""Self-conditioning: clusters that k-means finds in the training images, without reading a label.

A conditional GAN draws far better digits in the same time than an unconditional one, because
the label splits one hard task (draw any digit) into easier ones (draw this digit). Bao et al.
(2022) showed that most of that gain comes from the partition itself, and Liu et al. (2020)
that a GAN can condition on clusters it finds in its data. mnistgan's ``clusters=K``:
1. k-means (scikit-learn) partitions the training images into K clusters, on their pixels or
   on a PCA of them (:func:`assign`); the labels of the data are never read.
2. Both networks are the conditional ones, told the cluster instead of the digit.
3. The generator picks the cluster itself, from its noise (:func:`choice_statistic`): the noise
   alone draws an image, so sampling, evaluation, walks, projection and export work as for an
   unconditional run. The choice follows the clusters' sizes, as the real batches do.

How the noise picks the cluster: for standard normal noise z of length d, ``u = z[0] / |z|``
is an increasing function of ``t = z[0] sqrt(d - 1) / |z[1:]|``, which has Student's t
distribution with d - 1 degrees of freedom. Cutting u where t crosses the t quantiles of the
clusters' cumulative shares picks cluster k with probability size_k / total. u does not change
when z is scaled, so the truncation trick (psi * z) keeps every vector's cluster.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mnistgan.caches import touch
from mnistgan.config import CLUSTER_FEATURES, RunConfig
from mnistgan.errors import RunError, UsageError, arg
from mnistgan.files import atomic_path, cache_root
from mnistgan.runs import RunLayout

FEATURES = CLUSTER_FEATURES  # what k-means may cluster: the pixels, or their principal components
PCA_COMPONENTS = 50  # "pca": k-means on the first 50 principal components of the pixels
IMAGES_PER_CLUSTER = 10  # the fewest training images per cluster a recipe's clusters get


@dataclass(frozen=True)
class RunClusters:
    """A training run's clusters: how many, their sizes, each training image's cluster."""

    count: int  # 0: none (a recipe's clusters on too few images)
    sizes: tuple[int, ...]
    labels: np.ndarray | None


def for_run(config: RunConfig, layout: RunLayout, images: np.ndarray, resume: bool, asked: bool,
            message: Callable[[str], None]) -> RunClusters:
    """A training run's clusters. A new run finds them with k-means; a resume reads the run's
    own. A recipe's clusters (not ``asked`` for) become fewer on a small training set, at least
    10 images each, and none below 20 images."""
    k = config.model.clusters
    if resume:
        return RunClusters(k, config.model.cluster_sizes, _saved(config, layout, len(images)))
    if not asked and len(images) // IMAGES_PER_CLUSTER < k:
        fewer = len(images) // IMAGES_PER_CLUSTER
        k = fewer if fewer >= 2 else 0
        message(f"{len(images)} training images: {k or 'no'} clusters instead of the recipe's "
                f"{config.model.clusters} (at least {IMAGES_PER_CLUSTER} images each)")
        if not k:
            return RunClusters(0, (), None)
    if len(images) < k:
        raise UsageError(f"{arg('clusters')} {k} needs at least {k} training images, not {len(images)}")
    labels = cached_assign(images, k, config.train.seed, config.train.cluster_features, message)
    return RunClusters(k, sizes_of(labels, k), labels)


CACHE_FOLDER = "clusters"  # under files.cache_root(): one .npy of each image's cluster per key
ASSIGNMENT_VERSION = 1  # bump when assign() finds clusters another way: the cached ones are then found again


def cached_assign(images: np.ndarray, k: int, seed: int, features: str,
                  message: Callable[[str], None] = lambda text: None) -> np.ndarray:
    """:func:`assign`'s clusters, kept in the cache: k-means of MNIST's 60,000 images takes about
    20 s before a run's first step, and gives the same clusters every time for the same images,
    k, seed, features, scikit-learn and this code (:data:`ASSIGNMENT_VERSION`), which make the key.
    A damaged entry is made again."""
    digest = hashlib.sha256(images.tobytes())
    version = importlib.metadata.version("scikit-learn")  # without importing it: a cached run needs none of it
    digest.update(repr((images.shape, str(images.dtype), k, seed, features, version, ASSIGNMENT_VERSION)).encode())
    path = cache_root() / CACHE_FOLDER / f"{digest.hexdigest()[:32]}.npy"
    try:
        found = np.load(path, allow_pickle=False)
        if found.shape == (len(images),) and found.dtype == np.int32 and found.min() >= 0 and found.max() < k:
            touch(path)
            return found
    except (OSError, ValueError, EOFError):
        pass  # not there yet, or damaged: made again
    message(f"finding {k} clusters of the {len(images)} training images (k-means; kept in the cache for "
            "the next run on them)")
    found = assign(images, k, seed, features)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.save(tmp, found, allow_pickle=False)
    except OSError:
        pass  # a cache that cannot be written is no cache: the run goes on
    return found


def _saved(config: RunConfig, layout: RunLayout, n: int) -> np.ndarray:
    """The clusters a run saved, checked against its config and its n training images."""
    k = config.model.clusters
    try:
        saved = np.load(layout.clusters, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read the clusters of {layout.root} ({layout.clusters}: {exc})") from None
    if saved.shape != (n,) or saved.dtype.kind not in "iu" or saved.min() < 0 or saved.max() >= k:
        raise RunError(f"{layout.clusters} does not hold one of {k} clusters for each of the {n} "
                       "training images; the run cannot continue on this data")
    if sizes_of(saved, k) != config.model.cluster_sizes:
        raise RunError(f"{layout.clusters} does not match the cluster sizes in {layout.config}")
    return saved.astype(np.int32)


def save(layout: RunLayout, labels: np.ndarray) -> None:
    """Each training image's cluster, into the run folder (once, when the run starts), atomically."""

    with atomic_path(layout.clusters) as tmp:
        np.save(tmp, labels.astype(np.int32), allow_pickle=False)


def assign(images: np.ndarray, k: int, seed: int, features: str = "pixels") -> np.ndarray:
    """The cluster (0..k-1) of each uint8 image (N, 28, 28), numbered by size, largest first.

    Deterministic for the same images, k, seed and features (scikit-learn's k-means with a fixed
    random_state); the run saves the result, so a resume does not depend on it.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    if features == "pca":
        x = PCA(PCA_COMPONENTS, random_state=seed).fit_transform(x)
    elif features != "pixels":
        raise ValueError(f"features must be one of {', '.join(FEATURES)}, not {features!r}")
    found = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(x)
    counts = np.bincount(found, minlength=k)
    order = np.argsort(-counts, kind="stable")  # the largest cluster becomes 0
    rank = np.empty(k, np.int64)
    rank[order] = np.arange(k)
    return rank[found].astype(np.int32)


def sizes_of(assignment: np.ndarray, k: int) -> tuple[int, ...]:
    """Training images per cluster."""
    return tuple(int(c) for c in np.bincount(assignment, minlength=k))


def _u_of_t(t: np.ndarray, d: int) -> np.ndarray:
    return t / np.sqrt(d - 1 + np.square(t))


def bounds(sizes: tuple[int, ...] | list[int], noise_dim: int) -> np.ndarray:
    """Where the choice statistic ``z[0] / |z|`` changes cluster: K - 1 values, ascending."""
    from scipy.stats import t

    shares = np.cumsum(np.asarray(sizes, np.float64))[:-1] / float(np.sum(sizes))
    return _u_of_t(t.ppf(shares, noise_dim - 1), noise_dim).astype(np.float32)


def choice_statistic(noise: np.ndarray) -> np.ndarray:
    """``z[0] / |z|`` per row of float32 noise (N, d); the generator computes it with Keras's
    UnitNormalization, whose rounding can differ in the last bit."""
    noise = np.asarray(noise, np.float32)
    return noise[:, 0] / np.sqrt(np.sum(np.square(noise), axis=1))


def move_to_cluster(noise: np.ndarray, cluster: int, sizes: tuple[int, ...] | list[int]) -> np.ndarray:
    """The same noise with its first coordinate moved so that it picks ``cluster``: where the
    statistic sat in the whole distribution, it now sits in that cluster's share of it. The
    other coordinates, and so the rest of what the noise says, are unchanged."""
    from scipy.stats import t

    noise = np.array(noise, np.float32)
    d = noise.shape[1]
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(sizes, np.float64))]) / float(np.sum(sizes))
    low, high = cum[cluster], cum[cluster + 1]
    margin = 1e-6 * (high - low)  # keep clear of the edges, where float32 rounding could cross them
    rest = np.sqrt(np.sum(np.square(noise[:, 1:].astype(np.float64)), axis=1))
    now = t.cdf(noise[:, 0].astype(np.float64) * np.sqrt(d - 1) / rest, d - 1)  # where t sits, in [0, 1]
    share = low + margin + (high - low - 2 * margin) * now
    noise[:, 0] = (t.ppf(share, d - 1) * rest / np.sqrt(d - 1)).astype(np.float32)
    return noise
