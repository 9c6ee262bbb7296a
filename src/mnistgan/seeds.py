"""Every random stream of mnistgan, in one place: the same seed gives the same bytes.

Each stream is a pure function of the run's seed (and, during training, of the epoch and step),
so nothing but the seed has to be saved for a resumed run or a new process to draw the same
numbers. Host-side streams use numpy's PCG64 (identical on every platform); the step noise is
TensorFlow's counter-based stateless generator, drawn inside the compiled training step.
"""

from __future__ import annotations

import numpy as np

MAX_CLASSES = 100  # classes a data set may have (its labels 0-99)


class LayerSeeds:
    """Distinct integer seeds for a network's initializers and dropout layers, from one base."""

    def __init__(self, base: int) -> None:
        self._base = base * 1009
        self._n = 0

    def __call__(self) -> int:
        self._n += 1
        return (self._base + self._n) % (2**31 - 1)


GENERATOR_SEEDS_OFFSET = 0
DISCRIMINATOR_SEEDS_OFFSET = 7919  # a different stream from the generator's


def fixed_noise(seed: int, count: int, noise_dim: int) -> np.ndarray:
    """The progress grid's noise (Listing 11)."""
    return np.random.default_rng([seed, 0x6E6F]).standard_normal((count, noise_dim), dtype=np.float32)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """The steps of an epoch over ``n`` images: the full batches and, if any, the short last one."""
    return -(-n // batch_size)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """A fresh shuffle of ``n`` image indices for ``epoch`` (1-based), cut into batches.

    Returns the full batches as (steps, batch_size) and the remainder (possibly empty), like
    ``Dataset.shuffle(n).batch(batch_size)`` in Listing 5 without drop_remainder.
    """
    perm = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)
    full = n // batch_size
    return perm[: full * batch_size].reshape(full, batch_size), perm[full * batch_size :]


def step_noise(tf, seed: int, epoch, step, shape: tuple[int, int], classes: int):
    """The noise (batch, noise_dim) and the classes asked of the generator (batch,) of one
    training step, as TensorFlow tensors: stateless, so resuming needs no generator state.
    ``classes``: the labels asked for are drawn from 0 to classes - 1 (any count of at least 1
    on runs whose generator asks for none: the noise does not depend on it)."""
    key = tf.stack([tf.constant(seed, tf.int64), epoch * 1_000_003 + step])
    noise = tf.random.stateless_normal(shape, seed=key)
    digits = tf.random.stateless_uniform(
        shape[:1], seed=key + tf.constant([0, 1 << 40], tf.int64), maxval=classes, dtype=tf.int32
    )
    return noise, digits


def sample_noise(seed: int, n: int, noise_dim: int) -> np.ndarray:
    """The noise of ``sample --seed``, ``evaluate`` and ``interpolate``."""
    return np.random.default_rng(seed).standard_normal((n, noise_dim), dtype=np.float32)


def sample_digits(seed: int, n: int, classes: int) -> np.ndarray:
    """The classes a conditional ``sample`` draws when none is asked for."""
    return np.random.default_rng([seed, 10]).integers(0, classes, n).astype(np.int32)


def every_class(n: int, classes: int) -> np.ndarray:
    """0, 1, ..., classes - 1, 0, 1, ...: each class equally often, as scoring asks for them."""
    return np.arange(n, dtype=np.int32) % classes


def eval_noise(seed: int, n: int, noise_dim: int) -> np.ndarray:
    """The noise ``train --eval-every`` scores (another stream than ``sample --seed`` draws)."""
    return sample_noise(seed + 1, n, noise_dim)


def projection_starts(seed: int, n: int, noise_dim: int) -> np.ndarray:
    """The ``n`` noise vectors ``mnistgan project`` starts its searches from."""
    return np.random.default_rng([seed, 0x5052]).standard_normal((n, noise_dim), dtype=np.float32)


def recalibration_inputs(seed: int, n: int, noise_dim: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise (n, noise_dim) and uniformly drawn classes (n,) for re-estimating BatchNorm statistics."""
    rng = np.random.default_rng([seed, 0x424E])
    noise = rng.standard_normal((n, noise_dim), dtype=np.float32)
    return noise, rng.integers(0, classes, n).astype(np.int32)


def classifier_order(n: int, epoch: int) -> np.ndarray:
    """The evaluation classifier's shuffle of its training images in ``epoch``."""
    return np.random.default_rng([7, epoch]).permutation(n)


SPLIT_SEED = 0x5350  # the held-out test images of a folder of images: the same ones every time


def held_out(labels: np.ndarray, fraction: float) -> np.ndarray:
    """Which images of a folder are held out as its test set (a boolean mask): ``fraction`` of
    each class (labels (N,); all 0 without classes), rounded, at least one and never all of a
    class; none for a fraction of 0. Each class's choice depends on that class alone."""
    mask = np.zeros(len(labels), bool)
    if fraction <= 0:
        return mask
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        k = min(max(round(fraction * len(members)), 1), len(members) - 1)
        mask[np.random.default_rng([SPLIT_SEED, int(label)]).permutation(members)[:k]] = True
    return mask
