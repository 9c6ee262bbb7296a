"""What the DCGAN's step minimises: the adversarial losses and the gradient penalties.

Two losses (``--loss``): the report's sigmoid cross-entropy (Listings 8-9), and the relativistic
pairing of each real image with a generated one (Jolicoeur-Martineau 2019; with R1 and R2 as in
Huang et al. 2024, "The GAN is dead; long live the GAN!"). The penalties are gamma/2 times the
squared norm of the discriminator's gradient at the real images (R1) or the generated ones
(R2). Under a ``tf.distribute`` strategy every mean is the global batch's (:func:`batch_mean`).
"""

from __future__ import annotations

from collections.abc import Callable

from mnistgan.backend import import_tensorflow
from mnistgan.models import global_batch_size

tf = import_tensorflow()
import keras  # noqa: E402


def batch_mean(x: tf.Tensor) -> tf.Tensor:
    """The mean of per-example values ``x`` over the step's global batch.

    On one replica, the plain mean. On several, each holds a shard of the global batch, and the
    optimizers sum the replicas' gradients: a replica's part is its sum divided by the global
    batch's size, the sum of the shards' sizes (an epoch's short last batch may not split evenly).
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.reduce_mean(x)
    return tf.reduce_sum(x) / global_batch_size(context, x)


def adversarial(loss: str, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(generator loss, discriminator loss) of ``loss``, "standard" or "relativistic", from the
    discriminator's logits at the real and the generated images."""
    if loss == "relativistic":
        # Each real image against the generated one beside it: -log sigmoid(real - fake) for the
        # discriminator, the other way round for the generator (ln 2: cannot tell). An epoch's
        # short last batch (or shard) has fewer real images than noise: those pair.
        paired = fake_logits[: tf.shape(real_logits)[0]]
        return batch_mean(tf.nn.softplus(real_logits - paired)), batch_mean(tf.nn.softplus(paired - real_logits))
    # Sigmoid cross-entropy on logits (Listings 8-9): -log(sigmoid(x)) = softplus(-x).
    return (batch_mean(tf.nn.softplus(-fake_logits)),
            batch_mean(tf.nn.softplus(-real_logits)) + batch_mean(tf.nn.softplus(fake_logits)))


def with_penalty(discriminate: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor, gamma: float, interval: int,
                 optimizer: keras.optimizers.Optimizer) -> tuple[tf.Tensor, tf.Tensor]:
    """The logits ``discriminate`` gives these images, and their gradient penalty: gamma/2 times
    the squared norm of each logit's gradient with respect to its image's pixels, averaged (R1 at
    real images, R2 at generated ones); ``interval`` times as heavy when it is taken every
    ``interval`` steps (lazy regularisation). Called inside the discriminator's tape, so that its
    update differentiates the penalty too; ``optimizer``, the discriminator's, scales the loss
    where it keeps a loss scale."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = discriminate(images)
        # Each image's logit depends on that image only. Under mixed_float16 the gradient runs
        # back through float16 layers and underflows unless it is loss-scaled like the
        # optimizers' (scale_loss is the identity otherwise, so float32 runs are unchanged).
        total = optimizer.scale_loss(tf.reduce_sum(logits))
    grads = tape.gradient(total, images)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        grads = grads / tf.cast(optimizer.dynamic_scale, grads.dtype)
    penalty = batch_mean((0.5 * gamma) * tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
    return logits, penalty * float(interval) if interval > 1 else penalty
