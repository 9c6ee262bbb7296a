"""The report's generator and discriminator (Listings 6-7), built with Keras 3.

Layer for layer what the report builds; two additions that change no mathematics: every
initializer and dropout layer gets a seed derived from the run's seed (so runs are repeatable),
and the layers that produce the image and the logits stay float32 under a mixed dtype policy.
"""

from __future__ import annotations

from mnistgan.backend import import_tensorflow
from mnistgan.config import ModelConfig

import_tensorflow()
import keras  # noqa: E402  (after import_tensorflow has quietened TensorFlow's start-up)
from keras import layers  # noqa: E402

LEAKY_SLOPE = 0.3  # tf.keras's default LeakyReLU slope, which the report relies on
DROPOUT = 0.3  # Listing 6


class _Seeds:
    """Hands out distinct integer seeds derived from one base seed."""

    def __init__(self, base: int) -> None:
        self._base = base * 1009
        self._n = 0

    def __call__(self) -> int:
        self._n += 1
        return (self._base + self._n) % (2**31 - 1)

    def glorot(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=self())


def build_generator(cfg: ModelConfig, seed: int) -> keras.Sequential:
    """Noise (N, noise_dim) -> image (N, 28, 28, 1) in [-1, 1] (Listing 7)."""
    s = _Seeds(seed)
    p = cfg.dtype_policy
    return keras.Sequential(
        [
            keras.Input((cfg.noise_dim,)),
            layers.Dense(7 * 7 * 256, use_bias=False, kernel_initializer=s.glorot(), dtype=p),
            layers.BatchNormalization(dtype=p),
            layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
            layers.Reshape((7, 7, 256), dtype=p),  # N x 7 x 7 x 256
            layers.Conv2DTranspose(
                128, 5, strides=1, padding="same", use_bias=False, kernel_initializer=s.glorot(), dtype=p
            ),  # N x 7 x 7 x 128
            layers.BatchNormalization(dtype=p),
            layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
            layers.Conv2DTranspose(
                64, 5, strides=2, padding="same", use_bias=False, kernel_initializer=s.glorot(), dtype=p
            ),  # N x 14 x 14 x 64
            layers.BatchNormalization(dtype=p),
            layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
            layers.Conv2DTranspose(
                1,
                5,
                strides=2,
                padding="same",
                use_bias=False,
                activation="tanh",
                kernel_initializer=s.glorot(),
                dtype="float32",  # the image itself stays float32
            ),  # N x 28 x 28 x 1
        ],
        name="generator",
    )


def build_discriminator(cfg: ModelConfig, seed: int) -> keras.Sequential:
    """Image (N, 28, 28, 1) -> one real-vs-fake logit per image (Listing 6)."""
    s = _Seeds(seed + 7919)  # a different stream from the generator's
    p = cfg.dtype_policy
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, 5, strides=2, padding="same", kernel_initializer=s.glorot(), dtype=p),
            # N x 14 x 14 x 64
            layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
            layers.Dropout(DROPOUT, seed=s(), dtype=p),
            layers.Conv2D(128, 5, strides=2, padding="same", kernel_initializer=s.glorot(), dtype=p),
            # N x 7 x 7 x 128
            layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
            layers.Dropout(DROPOUT, seed=s(), dtype=p),
            layers.Flatten(dtype=p),  # N x 6272
            layers.Dense(1, kernel_initializer=s.glorot(), dtype="float32"),  # logits in float32
        ],
        name="discriminator",
    )


def seed_states(model: keras.Model) -> list:
    """The dropout RNG state variables of ``model``.

    Keras keeps them outside what tf.train.Checkpoint tracks through the model, so the checkpoint
    lists them explicitly; without them a resumed run would draw different dropout masks.
    """
    return [layer.seed_generator.state for layer in model.layers if hasattr(layer, "seed_generator")]
