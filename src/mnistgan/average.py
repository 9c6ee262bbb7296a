"""The averaged generator: a moving average of the generator's weights, which every grid,
sample and score is drawn from (training never reads it). Its state, the average's weights and
the count of its updates, lives in the run's checkpoints beside the networks (gan.py)."""

from __future__ import annotations

from mnistgan.backend import import_tensorflow
from mnistgan.config import TrainConfig

tf = import_tensorflow()


class MovingAverage:
    """The average of ``model``'s kind of generator, decayed by ``train_cfg.ema_decay`` per step,
    with ``ema_rampup``'s limit on its half-life early on."""

    def __init__(self, model, train_cfg: TrainConfig) -> None:
        self.model = model
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.decay, self.rampup = train_cfg.ema_decay, train_cfg.ema_rampup

    def start(self, generator) -> None:
        """Start the average at ``generator``'s current weights (a new run, or a run that had none)."""
        for avg, var in zip(self.model.variables, generator.variables):
            avg.assign(var)
        self.updates.assign(0)

    def update(self, generator) -> None:
        """One step of the average towards ``generator``'s weights, in cross-replica context
        (every replica holds the same weights). The decay warms up as (1 + t) / (10 + t), like
        TensorFlow's ExponentialMovingAverage with num_updates, so early epochs are not
        dominated by the random initial weights. With ``ema_rampup`` r, the half-life is also at
        most r times the images seen, (t + 1) steps of a batch each: a decay of at most
        0.5 ** (1 / (r (t + 1)))."""
        t = tf.cast(self.updates, tf.float32)
        decay = tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + t) / (10.0 + t))
        if self.rampup > 0:
            decay = tf.minimum(decay, tf.pow(0.5, 1.0 / (self.rampup * (t + 1.0))))
        for avg, var in zip(self.model.trainable_variables, generator.trainable_variables):
            avg.assign(decay * avg + (1.0 - decay) * tf.cast(var, avg.dtype))
        self.updates.assign_add(1)
