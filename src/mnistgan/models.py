"""The report's generator and discriminator (Listings 6-7), built with Keras 3.

Layer for layer what the report builds; two additions that change no mathematics: every
initializer and dropout layer gets a seed derived from the run's seed (so runs are repeatable),
and the layers that produce the image and the logits stay float32 under a mixed dtype policy.
"""

from __future__ import annotations

import numpy as np

from mnistgan.backend import import_tensorflow
from mnistgan.config import ModelConfig
from mnistgan.seeds import (
    DISCRIMINATOR_SEEDS_OFFSET,
    GENERATOR_SEEDS_OFFSET,
    LayerSeeds,
    recalibration_inputs,
)
from mnistgan.clusters import bounds

tf = import_tensorflow()
import keras  # noqa: E402  (after import_tensorflow has quietened TensorFlow's start-up)
from keras import layers  # noqa: E402

LEAKY_SLOPE = 0.3  # tf.keras's default LeakyReLU slope, which the report relies on
DROPOUT = 0.3  # Listing 6


def _glorot(seeds: LayerSeeds) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(seed=seeds())


GENERATOR_BODY = "generator_body"  # the conditional generator's sub-model: the report's layers
CLUSTER_CHOICE = "cluster"  # the self-conditioned generator's layer that picks the cluster from the noise


def one_hot(digits: np.ndarray, classes: int) -> np.ndarray:
    """Labels (N,) -> float32 one-hot rows (N, classes), as the conditional generator feeds its body."""
    return np.eye(classes, dtype=np.float32)[np.asarray(digits)]


def _generator_layers(s: LayerSeeds, p: str, sync: bool) -> list:
    """Listing 7 after its input: (N, inputs) -> (N, 28, 28, 1) in [-1, 1].

    ``sync``: BatchNorm statistics over the global batch when the batch is split across
    replicas, so the normalisation is the one a single device computes.
    """
    return [
        layers.Dense(7 * 7 * 256, use_bias=False, kernel_initializer=_glorot(s), dtype=p),
        layers.BatchNormalization(synchronized=sync, dtype=p),
        layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
        layers.Reshape((7, 7, 256), dtype=p),  # N x 7 x 7 x 256
        layers.Conv2DTranspose(
            128, 5, strides=1, padding="same", use_bias=False, kernel_initializer=_glorot(s), dtype=p
        ),  # N x 7 x 7 x 128
        layers.BatchNormalization(synchronized=sync, dtype=p),
        layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
        layers.Conv2DTranspose(
            64, 5, strides=2, padding="same", use_bias=False, kernel_initializer=_glorot(s), dtype=p
        ),  # N x 14 x 14 x 64
        layers.BatchNormalization(synchronized=sync, dtype=p),
        layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
        layers.Conv2DTranspose(
            1,
            5,
            strides=2,
            padding="same",
            use_bias=False,
            activation="tanh",
            kernel_initializer=_glorot(s),
            dtype="float32",  # the image itself stays float32
        ),  # N x 28 x 28 x 1
    ]


def global_batch_size(context: tf.distribute.ReplicaContext, shard: tf.Tensor) -> tf.Tensor:
    """The size of the global batch whose rows ``shard`` holds on this replica: the sum of every
    replica's rows (float32, exact for any batch that fits in memory)."""
    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(tf.shape(shard)[0], tf.float32))


class ShardedDropout(layers.Dropout):
    """Dropout whose masks do not depend on how the batch is split across replicas.

    On one device it is Keras's Dropout. When a tf.distribute strategy splits the batch, each
    replica draws the mask of the whole batch from the same seed (the seed state advances in
    step on every replica) and keeps its own rows, so replica r's images get exactly the mask
    they would get on one device, also when an epoch's short last batch splits unevenly (the rows
    are those of ``gan.shard``). Stateless random numbers are counter-based, so a mask's first
    rows do not depend on how many rows are drawn.
    """

    def call(self, inputs, training=False):
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync if ctx is not None else 1
        if not training or self.rate == 0 or replicas == 1:
            return super().call(inputs, training=training)
        size = tf.cast(global_batch_size(ctx, inputs), tf.int32)
        offset = size * tf.cast(ctx.replica_id_in_sync_group, tf.int32) // replicas  # where this shard starts
        whole = tf.concat([[size], tf.shape(inputs)[1:]], 0)
        mask = keras.random.dropout(tf.ones(whole, inputs.dtype), self.rate, seed=self.seed_generator)
        return inputs * mask[offset : offset + tf.shape(inputs)[0]]


def _discriminator_layers(s: LayerSeeds, p: str) -> list:
    """Listing 6 after its input: (N, 28, 28, channels) -> one logit per image."""
    return [
        layers.Conv2D(64, 5, strides=2, padding="same", kernel_initializer=_glorot(s), dtype=p),
        # N x 14 x 14 x 64
        layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
        ShardedDropout(DROPOUT, seed=s(), dtype=p),
        layers.Conv2D(128, 5, strides=2, padding="same", kernel_initializer=_glorot(s), dtype=p),
        # N x 7 x 7 x 128
        layers.LeakyReLU(LEAKY_SLOPE, dtype=p),
        ShardedDropout(DROPOUT, seed=s(), dtype=p),
        layers.Flatten(dtype=p),  # N x 6272
        layers.Dense(1, kernel_initializer=_glorot(s), dtype="float32"),  # logits in float32
    ]


def cluster_choice(cfg: ModelConfig) -> keras.Model:
    """Noise (N, d) -> the cluster (N, 1) that it picks (clusters.py): its first coordinate over
    its length, cut at the clusters' bounds. Keras's own layers only and no weights, so a
    self-conditioned generator saves, exports and loads like any other; float32 whatever the
    dtype policy."""

    if len(cfg.cluster_sizes) != cfg.clusters:
        raise ValueError(f"a generator of {cfg.clusters} clusters needs their {cfg.clusters} sizes")
    d = cfg.noise_dim
    return keras.Sequential([
        keras.Input((d,)),
        layers.UnitNormalization(dtype="float32"),  # z / |z|
        layers.Reshape((d, 1), dtype="float32"),
        layers.Cropping1D((0, d - 1), dtype="float32"),  # z[0] / |z|
        layers.Flatten(dtype="float32"),
        layers.Discretization(bin_boundaries=[float(b) for b in bounds(cfg.cluster_sizes, d)], dtype="float32"),
    ], name=CLUSTER_CHOICE)


def _one_hot_layer(cfg: ModelConfig) -> layers.Layer:
    """Labels (N,) or (N, 1) -> one-hot rows (N, classes): Keras's own layer, no weights, so a
    generator exports and loads without mnistgan."""
    return layers.CategoryEncoding(cfg.conditioning.count, output_mode="one_hot", name="label_onehot", dtype=cfg.dtype_policy)


def build_generator(cfg: ModelConfig, seed: int, sync_batchnorm: bool = False) -> keras.Model:
    """Noise (N, noise_dim) [and labels (N,)] -> image (N, 28, 28, 1) in [-1, 1] (Listing 7).

    Conditional: the one-hot digit is joined to the noise (Mirza and Osindero) before the
    report's layers, which live in the sub-model ``generator_body`` so that walks can feed it
    blends of digits; why one-hot and not an embedding: docs/conditional.md. Self-conditioned:
    the same with the cluster, picked from the noise by :func:`cluster_choice`.
    ``sync_batchnorm``: see :func:`_generator_layers` (the variables are the same either way).
    """
    s = LayerSeeds(seed + GENERATOR_SEEDS_OFFSET)
    p = cfg.dtype_policy
    labels = cfg.conditioning
    if not labels.labelled:
        return keras.Sequential([keras.Input((cfg.noise_dim,)), *_generator_layers(s, p, sync_batchnorm)], name="generator")
    body = keras.Sequential(
        [keras.Input((cfg.noise_dim + labels.count,)), *_generator_layers(s, p, sync_batchnorm)], name=GENERATOR_BODY
    )
    noise = keras.Input((cfg.noise_dim,), name="noise")
    if labels.clusters:
        label = cluster_choice(cfg)(noise)
        inputs = noise
    else:
        label = keras.Input((), dtype="int32", name="label")
        inputs = [noise, label]
    onehot = _one_hot_layer(cfg)(label)
    image = body(layers.Concatenate(dtype=p)([noise, onehot]))
    return keras.Model(inputs, image, name="generator")


def build_discriminator(cfg: ModelConfig, seed: int) -> keras.Model:
    """Image (N, 28, 28, 1) [and labels (N,)] -> one real-vs-fake logit per image (Listing 6).

    With labels (digits or clusters): a projection discriminator (Miyato and Koyama, 2018): the
    label's learned embedding times the report's flattened features, added to its logit (the
    designs before it: docs/conditional.md).
    """
    s = LayerSeeds(seed + DISCRIMINATOR_SEEDS_OFFSET)
    p = cfg.dtype_policy
    if not cfg.conditioning.labelled:
        return keras.Sequential([keras.Input((28, 28, 1)), *_discriminator_layers(s, p)], name="discriminator")
    image = keras.Input((28, 28, 1), name="image")
    label = keras.Input((), dtype="int32", name="label")
    *body, head = _discriminator_layers(s, p)
    features = image
    for layer in body:
        features = layer(features)  # N x 6272
    report_logit = head(features)
    onehot = _one_hot_layer(cfg)(label)
    # A Dense on the one-hot is a lookup of the digit's embedding (no bias, so no constant term).
    embedding = layers.Dense(features.shape[-1], use_bias=False, kernel_initializer=_glorot(s),
                             name="label_projection", dtype=p)(onehot)
    projection = layers.Dot(axes=1, dtype="float32")([embedding, features])
    logit = layers.Add(dtype="float32")([report_logit, projection])
    return keras.Model([image, label], logit, name="discriminator")


def generate(generator: keras.Model, cfg: ModelConfig, noise, labels=None, training: bool = False):
    """The generator's forward pass, the one every path that draws takes (training, samples,
    grids, scores, walks, projection, export): noise (N, noise_dim) -> images (N, 28, 28, 1) in
    [-1, 1], as a tensor (differentiable in the noise).

    ``labels``: for a conditional generator, each image's digit (N,). Or, for any generator with
    a label input, label vectors (N, classes): one-hot rows or blends of them, fed with the noise
    to the layers after the one-hot step (a walk from digit to digit). A self-conditioned
    generator given no vectors picks each image's cluster from its noise.
    """
    if labels is not None and len(labels.shape) == 2:  # label vectors
        body = generator.get_layer(GENERATOR_BODY)
        return body(keras.ops.concatenate([noise, labels], axis=1), training=training)
    return generator([noise, labels] if cfg.conditioning.classes else noise, training=training)


def discriminator_inputs(cfg: ModelConfig, images, labels):
    """What the discriminator takes: images, and the digit or cluster of each when it has a label input."""
    return [images, labels] if cfg.conditioning.labelled else images


def generated_labels(generator: keras.Model, cfg: ModelConfig, noise, digits):
    """The label of each image the generator draws from ``noise``: the digits asked of a
    conditional generator, or the clusters a self-conditioned one picks."""
    if not cfg.conditioning.clusters:
        return digits
    return keras.ops.cast(keras.ops.squeeze(generator.get_layer(CLUSTER_CHOICE)(noise), 1), "int32")


def all_layers(model: keras.Model) -> list:
    """Layers of ``model`` and of any sub-models, depth first."""
    out = []
    for layer in model.layers:
        out.extend(all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def seed_states(model: keras.Model) -> list:
    """The dropout RNG state variables of ``model``.

    Keras keeps them outside what tf.train.Checkpoint tracks through the model, so the checkpoint
    lists them explicitly; without them a resumed run would draw different dropout masks.
    """
    return [layer.seed_generator.state for layer in all_layers(model) if hasattr(layer, "seed_generator")]


def recalibrate_batchnorm(generator: keras.Model, cfg: ModelConfig, seed: int, batch_size: int,
                          batches: int = 8) -> None:
    """Re-estimate the generator's BatchNorm moving statistics for its current weights.

    Inference (epoch grids, ``sample``, ``evaluate``) normalizes with the moving statistics, an
    exponential average (momentum 0.99) of past batches. When the generator changes quickly, as
    GANs do, those lag behind the weights and inference images can go black or blotchy while
    the generator itself draws digits. Noise costs nothing, so the statistics are recomputed
    from one training-mode pass over ``batches`` batches' worth of fixed noise (and uniformly
    drawn digits). Only the moving statistics change; the weights, and so training, are untouched.

    The pass runs one layer at a time and keeps only the current layer's input and output.
    Calling the model would hold every intermediate until the end: about 760 MB for 2,048
    images, which was most of a training process's peak memory. The statistics are the same.
    """
    norms = [layer for layer in all_layers(generator) if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        return
    momenta = [layer.momentum for layer in norms]
    count = cfg.conditioning.count
    noise, digits = recalibration_inputs(seed, batches * batch_size, cfg.noise_dim, max(count, 1))
    if count:  # what the generator's Concatenate hands its body: noise, then the one-hot label
        labels = np.asarray(generated_labels(generator, cfg, noise, digits))
        body, x = generator.get_layer(GENERATOR_BODY), np.concatenate([noise, one_hot(labels, count)], axis=1)
    else:
        body, x = generator, noise
    try:
        for layer in norms:
            layer.momentum = 0.0  # the statistics of this pass replace the moving ones
        for layer in body.layers:
            x = layer(x, training=True)  # the previous output is freed here
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
