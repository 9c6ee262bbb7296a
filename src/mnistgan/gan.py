"""The DCGAN's trainable state and its compiled training steps (Listings 8-12).

Everything a resumed run needs lives in one ``tf.train.Checkpoint``: both networks, both Adam
optimizers (built before any restore, so their moments are restored, not silently skipped), the
epoch and step counters, the running loss sums of the epoch in progress, the fixed noise, and
the discriminator's dropout RNG state. Step noise and shuffling are derived from (seed, epoch,
step), so nothing else is needed to continue exactly where a checkpoint left off.

Speed (see docs/performance.md): the training images live on the device as one uint8 tensor;
a whole chunk of steps runs inside one ``tf.function`` call (a graph-side loop with no Python or
tf.data work between steps); every full batch has a static shape.
"""

from __future__ import annotations

import numpy as np

from mnistgan.backend import import_tensorflow
from mnistgan.config import ModelConfig, TrainConfig
from mnistgan.models import build_discriminator, build_generator, seed_states

tf = import_tensorflow()
import keras  # noqa: E402


def fixed_noise(seed: int, count: int, noise_dim: int) -> np.ndarray:
    """The progress grid's noise (Listing 11), from numpy so it is the same on every platform."""
    return np.random.default_rng([seed, 0x6E6F]).standard_normal((count, noise_dim), dtype=np.float32)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """A fresh shuffle of ``n`` image indices for ``epoch`` (1-based), cut into batches.

    Returns the full batches as (steps, batch_size) and the remainder (possibly empty), like
    ``Dataset.shuffle(n).batch(batch_size)`` in Listing 5 without drop_remainder.
    """
    perm = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)
    full = n // batch_size
    return perm[: full * batch_size].reshape(full, batch_size), perm[full * batch_size :]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def _make_optimizer(cfg: ModelConfig, lr: float) -> keras.optimizers.Optimizer:
    opt = keras.optimizers.Adam(learning_rate=lr)  # Listing 10
    if cfg.dtype_policy == "mixed_float16":
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


class DCGAN:
    """Generator, discriminator, optimizers and counters, with compiled training steps."""

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
        self.model_cfg = model_cfg
        self.train_cfg = train_cfg
        self.generator = build_generator(model_cfg, train_cfg.seed)
        self.discriminator = build_discriminator(model_cfg, train_cfg.seed)
        self.generator_optimizer = _make_optimizer(model_cfg, train_cfg.learning_rate)
        self.discriminator_optimizer = _make_optimizer(model_cfg, train_cfg.learning_rate)
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)  # completed epochs
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)  # steps done in the next epoch
        self.loss_sums = tf.Variable(tf.zeros([2]), trainable=False)  # (generator, discriminator)
        self.fixed_noise = tf.Variable(
            fixed_noise(train_cfg.seed, train_cfg.num_examples, model_cfg.noise_dim), trainable=False
        )
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            epoch=self.epoch,
            step=self.step,
            loss_sums=self.loss_sums,
            fixed_noise=self.fixed_noise,
            dropout_state=seed_states(self.discriminator),
        )

        bs, nd = train_cfg.batch_size, model_cfg.noise_dim
        self._train_step = tf.function(self._step_impl, jit_compile=train_cfg.jit_compile)
        self.run_steps = tf.function(
            self._run_steps_impl,
            input_signature=[
                tf.TensorSpec([None, 28, 28], tf.uint8),  # all training images, on the device
                tf.TensorSpec([None], tf.uint8),  # their labels (used by conditional models)
                tf.TensorSpec([None, bs], tf.int32),  # this epoch's full batches of indices
                tf.TensorSpec([], tf.int64),  # epoch (1-based)
                tf.TensorSpec([], tf.int64),  # first step to run
                tf.TensorSpec([], tf.int64),  # one past the last step
            ],
        )
        self.run_last_step = tf.function(self._run_last_step_impl)
        self._noise_shape = (bs, nd)

    def trackables(self) -> list:
        """The models and optimizers whose variables make up a checkpoint."""
        return [self.generator, self.discriminator, self.generator_optimizer, self.discriminator_optimizer]

    # -- one optimisation step (Listing 12) -------------------------------------------------

    def _g(self, noise, labels, training: bool):
        return self.generator([noise, labels] if self.model_cfg.conditional else noise, training=training)

    def _d(self, images, labels, training: bool):
        out = self.discriminator([images, labels] if self.model_cfg.conditional else images, training=training)
        return tf.cast(out, tf.float32)

    def _step_impl(self, real_u8, real_labels, noise, fake_labels) -> tuple[tf.Tensor, tf.Tensor]:
        real = (tf.cast(real_u8[..., None], tf.float32) - 127.5) / 127.5  # Listing 5: [-1, 1]
        g_opt, d_opt = self.generator_optimizer, self.discriminator_optimizer
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self._g(noise, fake_labels, training=True)
            real_logits = self._d(real, real_labels, training=True)
            fake_logits = self._d(fake, fake_labels, training=True)
            # Sigmoid cross-entropy on logits (Listings 8-9): -log(sigmoid(x)) = softplus(-x).
            g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
            d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(
                tf.nn.softplus(fake_logits)
            )
            g_scaled, d_scaled = g_opt.scale_loss(g_loss), d_opt.scale_loss(d_loss)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        g_opt.apply(g_tape.gradient(g_scaled, g_vars), g_vars)
        d_opt.apply(d_tape.gradient(d_scaled, d_vars), d_vars)
        return g_loss, d_loss

    def _noise(self, epoch: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Step noise and the digits asked of the generator (conditional runs), both pure
        functions of (seed, epoch, step): resuming needs no RNG state for them."""
        key = tf.stack([tf.constant(self.train_cfg.seed, tf.int64), epoch * 1_000_003 + step])
        noise = tf.random.stateless_normal(self._noise_shape, seed=key)
        labels = tf.random.stateless_uniform(
            self._noise_shape[:1], seed=key + tf.constant([0, 1 << 40], tf.int64), maxval=10, dtype=tf.int32
        )
        return noise, labels

    def _record(self, step: tf.Tensor, g_loss: tf.Tensor, d_loss: tf.Tensor) -> None:
        self.loss_sums.assign_add(tf.stack([g_loss, d_loss]))
        self.step.assign(step + 1)

    # -- compiled loops ------------------------------------------------------------------------

    def _batch_step(self, images, labels, indices, epoch, step):
        real = tf.gather(images, indices)  # (batch, 28, 28) uint8
        real_labels = tf.cast(tf.gather(labels, indices), tf.int32)
        noise, fake_labels = self._noise(epoch, step)
        g_loss, d_loss = self._train_step(real, real_labels, noise, fake_labels)
        self._record(step, g_loss, d_loss)

    def _run_steps_impl(self, images, labels, batches, epoch, start, stop):
        """Steps ``start..stop-1`` of ``epoch`` over full batches, all inside one graph call."""
        for step in tf.range(start, stop):
            self._batch_step(images, labels, batches[step], epoch, step)
        return self.loss_sums.read_value()

    def _run_last_step_impl(self, images, labels, indices, epoch, step):
        """The epoch's short last batch (its own static shape); noise stays a full batch."""
        self._batch_step(images, labels, indices, epoch, step)
        return self.loss_sums.read_value()

    # -- inference ------------------------------------------------------------------------------

    def grid_shape(self) -> tuple[int, int]:
        """Rows and columns of the progress grid: one row per digit for conditional runs."""
        from mnistgan.images import grid_shape

        n = self.train_cfg.num_examples
        return (10, n) if self.model_cfg.conditional else grid_shape(n)

    def progress_images(self) -> np.ndarray:
        """The fixed-noise samples in inference mode (BatchNorm uses its moving statistics).

        Conditional runs draw every digit from the same noise vectors: row d holds digit d.
        """
        noise = self.fixed_noise
        if not self.model_cfg.conditional:
            return self.generator(noise, training=False).numpy()
        n = noise.shape[0]
        labels = tf.repeat(tf.range(10, dtype=tf.int32), n)
        return self._g(tf.tile(noise, [10, 1]), labels, training=False).numpy()
