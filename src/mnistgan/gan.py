"""The DCGAN's trainable state and its compiled training steps (Listings 8-12).

One ``tf.train.Checkpoint`` holds everything a resume needs: both networks and optimizers
(built before any restore, so their moments are restored), the epoch and step counters, the
epoch's running loss sums, the fixed noise, the dropout RNG state and, with ``ema_decay`` > 0,
the averaged generator (a moving average of the weights that grids and samples are drawn from;
training never reads it; docs/code.md). Step noise and shuffling derive from (seed, epoch, step).

A chunk of steps runs in one ``tf.function`` call on images kept on the device
(docs/performance.md). Under a ``tf.distribute`` strategy each replica runs the one-device step
on its shard of the global batch, and :func:`losses.batch_mean` makes the losses the global batch's
(docs/distributed.md).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from mnistgan import seeds
from mnistgan.average import MovingAverage
from mnistgan.backend import import_tensorflow, native_stderr_filtered
from mnistgan.checkpoints import AVERAGE_KEY, AVERAGE_UPDATES_KEY, CONFIG_KEY, CheckpointInfo
from mnistgan.config import ModelConfig, TrainConfig
from mnistgan.errors import CheckpointError
from mnistgan.losses import adversarial, with_penalty
from mnistgan.models import (
    build_discriminator,
    build_generator,
    discriminator_inputs,
    generated_labels,
    generate,
    recalibrate_batchnorm,
    seed_states,
)
from mnistgan.schedule import lazy_ratio, lr_factor, r1_segments, steps_before

tf = import_tensorflow()
import keras  # noqa: E402


STEPS_PER_CALL = 10  # steps per compiled call: progress granularity vs per-call overhead


@dataclass(frozen=True)
class Epoch:
    """One epoch's work: its number, the training data on the device, its shuffled batches."""

    number: int
    data: tuple  # (images, labels) from DCGAN.place_data
    full: tf.Tensor  # (steps, batch_size) image indices of the full batches
    rest: tf.Tensor  # the short last batch's indices (possibly none)
    steps: int




def shard(x: tf.Tensor, replica: tf.Tensor, replicas: int) -> tf.Tensor:
    """Replica ``replica``'s rows of a global batch: equal consecutive slices.

    Only an epoch's short last batch can fail to divide evenly; its shards then differ in size
    by at most one row.
    """
    size = tf.shape(x)[0]
    replica = tf.cast(replica, tf.int32)
    return x[size * replica // replicas : size * (replica + 1) // replicas]


def _make_optimizer(cfg: ModelConfig, lr: float, train_cfg: TrainConfig, ratio: float = 1.0) -> keras.optimizers.Optimizer:
    opt = keras.optimizers.Adam(learning_rate=lr * ratio, beta_1=train_cfg.beta1 ** ratio,
                                beta_2=train_cfg.beta2 ** ratio)  # Listing 10
    if cfg.dtype_policy == "mixed_float16":
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


class DCGAN:
    """Generator, discriminator, optimizers and counters, with compiled training steps."""

    def __init__(
        self, model_cfg: ModelConfig, train_cfg: TrainConfig, strategy: tf.distribute.Strategy | None = None
    ) -> None:
        self.model_cfg = model_cfg
        self.train_cfg = train_cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        # The batch splits evenly over the replicas: training.place checks it, with the user's words.
        with self.strategy.scope():  # variables created here are mirrored on every replica
            self._build_state(model_cfg, train_cfg)
        # The run's config.json travels in every checkpoint. A string: created outside the
        # strategy, since strings can be neither mirrored nor broadcast between workers.
        with tf.device("/CPU:0"):
            self.run_config = tf.Variable("", dtype=tf.string, trainable=False)
        self.parts[CONFIG_KEY] = self.run_config
        self.checkpoint = tf.train.Checkpoint(**self.parts)

        bs, nd = train_cfg.batch_size, model_cfg.noise_dim
        # One device: a nested tf.function (XLA can compile it). Several replicas: inlined, since
        # a nested function may not contain the optimizers' and BatchNorm's cross-replica sums.
        self._train_step = (
            tf.function(self._step_impl, jit_compile=train_cfg.jit_compile) if self.replicas == 1 else self._step_impl
        )
        self.run_steps = tf.function(self._run_steps_impl)
        self.run_last_step = tf.function(self._run_last_step_impl)
        self._noise_shape = (bs, nd)
        self._built = False  # the compiled steps have run a whole epoch in this process
        self._ran: set[bool] = set()  # the kinds of full-batch step run in this process: penalised or not
        self._lr_factor: float | None = None  # the learning rates' factor last set (lr_drop_after)

    def _build_state(self, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
        self.generator = build_generator(model_cfg, train_cfg.seed, sync_batchnorm=self.replicas > 1)
        self.discriminator = build_discriminator(model_cfg, train_cfg.seed)
        self.generator_optimizer = _make_optimizer(model_cfg, train_cfg.learning_rate, train_cfg)
        self.discriminator_optimizer = _make_optimizer(model_cfg, train_cfg.discriminator_learning_rate, train_cfg,
                                                       lazy_ratio(train_cfg))
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)  # completed epochs
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)  # steps done in the next epoch
        self.loss_sums = tf.Variable(tf.zeros([2]), trainable=False)  # (generator, discriminator)
        self.fixed_noise = tf.Variable(
            seeds.fixed_noise(train_cfg.seed, train_cfg.num_examples, model_cfg.noise_dim), trainable=False
        )
        trained = dict(
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
        self.average = self.averaging = None
        if train_cfg.ema_decay > 0:
            # float32 whatever the policy: the average is what every picture and score is drawn from.
            self.averaging = MovingAverage(build_generator(model_cfg.replace(dtype_policy="float32"), train_cfg.seed,
                                                           sync_batchnorm=self.replicas > 1), train_cfg)
            self.averaging.start(self.generator)
            self.average = self.averaging.model
            trained |= {AVERAGE_KEY: self.average, AVERAGE_UPDATES_KEY: self.averaging.updates}
        self.parts = trained  # what a checkpoint holds, by name

    def checkpoint_of(self, info: CheckpointInfo) -> tf.train.Checkpoint:
        """The objects the saved checkpoint ``info`` holds, to restore it strictly. Only what
        older checkpoints lack may be missing: the average (runs that start one on resume) and
        the config (before 0.4.0); a checkpoint without the discriminator, an optimizer or a
        counter cannot continue the run, and is refused rather than trained on from fresh ones."""
        missing = set(self.parts) - info.keys - {AVERAGE_KEY, AVERAGE_UPDATES_KEY, CONFIG_KEY}
        if missing:
            raise CheckpointError(f"{info.prefix} lacks {', '.join(sorted(missing))}: it cannot continue a run "
                                  "(sample, evaluate and export read its generator)")
        return tf.train.Checkpoint(**{k: v for k, v in self.parts.items() if k in info.keys})

    def trackables(self) -> list:
        """The models and optimizers whose variables make up a checkpoint."""
        parts = [self.generator, self.discriminator, self.generator_optimizer, self.discriminator_optimizer]
        return parts + ([self.average] if self.average is not None else [])

    # -- one optimisation step (Listing 12) -------------------------------------------------

    def _g(self, noise, labels, training: bool):
        return generate(self.generator, self.model_cfg, noise, labels, training)

    def _d(self, images, labels, training: bool):
        out = self.discriminator(discriminator_inputs(self.model_cfg, images, labels), training=training)
        return tf.cast(out, tf.float32)

    def _logits(self, images, labels, gamma: float, regularize: bool):
        """The discriminator's logits, with the penalty of weight gamma in a step that carries one
        (None otherwise): losses.with_penalty."""
        if regularize and gamma > 0:
            return with_penalty(lambda x: self._d(x, labels, training=True), images, gamma,
                                self.train_cfg.r1_interval, self.discriminator_optimizer)
        return self._d(images, labels, training=True), None

    def _step_impl(self, real_u8, real_labels, noise, fake_labels, regularize: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """One step on these images and this noise: a whole batch on one device, a replica's
        shard under a strategy (where :func:`losses.batch_mean` makes the losses the global batch's).
        ``regularize``: the discriminator's objective has the R1 and R2 penalties in this step (a
        Python bool, so each kind of step is a graph of its own, without control flow)."""
        real = (tf.cast(real_u8[..., None], tf.float32) - 127.5) / 127.5  # Listing 5: [-1, 1]
        g_opt, d_opt, cfg = self.generator_optimizer, self.discriminator_optimizer, self.train_cfg
        fake_labels = generated_labels(self.generator, self.model_cfg, noise, fake_labels)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self._g(noise, fake_labels, training=True)
            real_logits, r1 = self._logits(real, real_labels, cfg.r1, regularize)
            fake_logits, r2 = self._logits(fake, fake_labels, cfg.r2, regularize)
            g_loss, d_loss = adversarial(cfg.loss, real_logits, fake_logits)
            # The reported loss stays the adversarial one (standard: ln 4 = 1.386 when the
            # discriminator cannot tell real from fake); the discriminator minimises it plus the penalties.
            d_objective = d_loss
            for penalty in (r1, r2):
                if penalty is not None:
                    d_objective = d_objective + penalty
            g_scaled, d_scaled = g_opt.scale_loss(g_loss), d_opt.scale_loss(d_objective)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        g_opt.apply(g_tape.gradient(g_scaled, g_vars), g_vars)
        d_opt.apply(d_tape.gradient(d_scaled, d_vars), d_vars)
        return g_loss, d_loss

    def _record(self, step: tf.Tensor, g_loss: tf.Tensor, d_loss: tf.Tensor) -> None:
        self.loss_sums.assign_add(tf.stack([g_loss, d_loss]))  # global-batch means
        self.step.assign(step + 1)

    # -- compiled loops ------------------------------------------------------------------------

    def _replica_step(self, images, labels, indices, noise, fake_labels, regularize):
        """This replica's part of one step: the plain step on its shard of the global batch."""
        if self.replicas > 1:
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            indices, noise, fake_labels = (shard(x, replica, self.replicas) for x in (indices, noise, fake_labels))
        real = tf.gather(images, indices)  # (batch, 28, 28) uint8
        real_labels = tf.cast(tf.gather(labels, indices), tf.int32)
        return tf.stack(self._train_step(real, real_labels, noise, fake_labels, regularize))

    def _batch_step(self, images, labels, indices, epoch, step, regularize):
        noise, fake_labels = seeds.step_noise(tf, self.train_cfg.seed, epoch, step, self._noise_shape,
                                             max(self.model_cfg.conditioning.count, 1))
        per_replica = self.strategy.run(self._replica_step,
                                        args=(images, labels, indices, noise, fake_labels, regularize))
        losses = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        if self.average is not None:
            self.averaging.update(self.generator)
        self._record(step, losses[0], losses[1])

    def place_data(self, images: np.ndarray, labels: np.ndarray):
        """The training set on every replica's device (uint8: no per-step host copies)."""
        if self.replicas == 1:
            device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
            with tf.device(device):
                return tf.constant(images), tf.constant(labels)
        return (
            self.strategy.experimental_distribute_values_from_function(lambda _: tf.constant(images)),
            self.strategy.experimental_distribute_values_from_function(lambda _: tf.constant(labels)),
        )

    # -- an epoch, chunk by chunk: the DCGAN keeps its own counters ---------------------------------

    def begin_epoch(self, epoch: int, data, n: int) -> Epoch:
        """Epoch ``epoch``'s shuffled batches of ``n`` images (``data``: from :meth:`place_data`),
        ready for :meth:`train_chunk`; from its first step, the loss sums start again."""
        full, rest = seeds.epoch_batches(n, self.train_cfg.batch_size, self.train_cfg.seed, epoch)
        if self.steps_done() == 0:  # not an epoch resumed mid-way
            self.loss_sums.assign([0.0, 0.0])
        return Epoch(epoch, data, tf.constant(full), tf.constant(rest), seeds.steps_per_epoch(n, self.train_cfg.batch_size))

    def steps_done(self) -> int:
        """Steps done in the epoch in progress."""
        return int(self.step.numpy())

    def train_chunk(self, epoch: Epoch) -> int:
        """Train the next steps of ``epoch`` (up to :data:`STEPS_PER_CALL` in one compiled call, or the
        epoch's short last batch); returns the steps done in the epoch."""
        done, full = self.steps_done(), int(epoch.full.shape[0])
        number = tf.constant(epoch.number, tf.int64)
        first = steps_before(self.train_cfg, epoch.number, epoch.steps)  # the run's steps before this epoch
        # Decided at each chunk's start, so a resume repeats it exactly; with no drop too, so a resume
        # that switches the drop off (lr_drop_after 0) trains at the full rates again.
        self._set_learning_rates((first + done) * self.train_cfg.batch_size)
        end = min(done + STEPS_PER_CALL, full) if done < full else done + 1
        # The first call of each compiled function builds its graph; hold back the optimizer's
        # harmless complaints while it does.
        with native_stderr_filtered() if not self._built else contextlib.nullcontext():
            for start, stop, regularize in r1_segments(self.train_cfg, first, done, end):
                if start < full:
                    self.run_steps(*epoch.data, epoch.full, number, tf.constant(start, tf.int64),
                                   tf.constant(stop, tf.int64), regularize)
                    self._ran.add(regularize)
                else:
                    self.run_last_step(*epoch.data, epoch.rest, number, tf.constant(start, tf.int64), regularize)
        return end  # what the step counter now says, without reading it back from the device

    @property
    def steps_built(self) -> bool:
        """Every kind of full-batch step the run takes has run in this process, so its graph is
        built: with the penalties and without them under lazy R1 (the penalised one may first come
        in a later chunk than the first), one kind otherwise."""
        cfg = self.train_cfg
        return ({True, False} if cfg.penalized and cfg.r1_interval > 1 else {cfg.penalized}) <= self._ran


    def _set_learning_rates(self, images: int) -> None:
        """Both optimizers' learning rates after ``images`` training images (they live in the
        checkpoint): :func:`lr_factor` times the configured ones, the discriminator's times the
        lazy R1 ratio."""
        cfg = self.train_cfg
        factor = lr_factor(cfg, images)
        if factor == self._lr_factor:  # set already (a restore brings the checkpoint's: set once after it)
            return
        self._lr_factor = factor
        for opt, lr in ((self.generator_optimizer, cfg.learning_rate),
                        (self.discriminator_optimizer, cfg.discriminator_learning_rate * lazy_ratio(cfg))):
            opt.learning_rate.assign(lr * factor)

    def schedule(self, train_cfg: TrainConfig) -> None:
        """Train on with ``train_cfg``'s learning-rate schedule (the budget's, once measured)."""
        self.train_cfg = train_cfg
        self._lr_factor = None

    def mean_losses(self, steps: int) -> tuple[float, float]:
        """The epoch's mean generator and discriminator losses over its ``steps`` steps so far."""
        g_sum, d_sum = self.loss_sums.numpy()
        return float(g_sum) / steps, float(d_sum) / steps

    def end_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` is complete: the counters say so, for the checkpoint saved next."""
        self._built = True
        self.epoch.assign(epoch)
        self.step.assign(0)

    def _run_steps_impl(self, images, labels, batches, epoch, start, stop, regularize: bool):
        """Steps ``start..stop-1`` of ``epoch`` over full batches, all inside one graph call."""
        for step in tf.range(start, stop):
            self._batch_step(images, labels, batches[step], epoch, step, regularize)
        return self.loss_sums.read_value()

    def _run_last_step_impl(self, images, labels, indices, epoch, step, regularize: bool):
        """The epoch's short last batch (its own static shape); noise stays a full batch."""
        self._batch_step(images, labels, indices, epoch, step, regularize)
        return self.loss_sums.read_value()

    # -- inference ------------------------------------------------------------------------------

    def drawn(self) -> keras.Model:
        """The generator that draws pictures (grids, scores, samples): the average when the run keeps one."""
        return self.average if self.average is not None else self.generator

    def recalibrate(self) -> None:
        """Re-estimate the BatchNorm statistics of the generator that draws pictures (see
        models.recalibrate_batchnorm)."""
        with self.strategy.scope():  # cross-replica: every replica's copy gets the same statistics
            recalibrate_batchnorm(self.drawn(), self.model_cfg, self.train_cfg.seed,
                                  self.train_cfg.batch_size)
