"""The model and one training step are the report's, checked against the plain TF2 port."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))



@pytest.fixture(scope="module")
def tf():
    from mnistgan.backend import import_tensorflow

    return import_tensorflow()


def test_parameter_counts_match_the_tensorflow_tutorial(tf):
    from mnistgan.config import ModelConfig
    from mnistgan.models import build_discriminator, build_generator

    # The tutorial's model summaries: generator 2,330,944 parameters, discriminator 212,865.
    assert build_generator(ModelConfig(), 0).count_params() == 2_330_944
    assert build_discriminator(ModelConfig(), 0).count_params() == 212_865


@pytest.mark.slow
def test_one_step_equals_the_plain_port(tf):
    """Same weights, batch and noise: the same losses and the same weights after one Adam step."""
    import keras
    import plain_port

    from mnistgan.config import ModelConfig, TrainConfig
    from mnistgan.gan import DCGAN

    gan = DCGAN(ModelConfig(), TrainConfig(batch_size=8, seed=1))
    ref_g, ref_d = plain_port.make_generator(), plain_port.make_discriminator()
    ref_g.set_weights(gan.generator.get_weights())
    ref_d.set_weights(gan.discriminator.get_weights())
    for model in (gan.discriminator, ref_d):  # dropout masks cannot be matched; compare without them
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0

    rng = np.random.default_rng(0)
    real_u8 = rng.integers(0, 256, (8, 28, 28), dtype=np.uint8)
    noise = rng.standard_normal((8, 100), dtype=np.float32)
    no_labels = tf.zeros([8], tf.int32)  # unconditional: labels are ignored
    g_loss, d_loss = gan._train_step(tf.constant(real_u8), no_labels, tf.constant(noise), no_labels, False)

    real = (real_u8.reshape(8, 28, 28, 1).astype("float32") - 127.5) / 127.5
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    with tf.GradientTape() as gt, tf.GradientTape() as dt:
        fake = ref_g(noise, training=True)
        real_out, fake_out = ref_d(real, training=True), ref_d(fake, training=True)
        ref_g_loss = bce(tf.ones_like(fake_out), fake_out)
        ref_d_loss = bce(tf.ones_like(real_out), real_out) + bce(tf.zeros_like(fake_out), fake_out)
    g_opt.apply_gradients(zip(gt.gradient(ref_g_loss, ref_g.trainable_variables), ref_g.trainable_variables))
    d_opt.apply_gradients(zip(dt.gradient(ref_d_loss, ref_d.trainable_variables), ref_d.trainable_variables))

    np.testing.assert_allclose(float(g_loss), float(ref_g_loss), rtol=1e-5)
    np.testing.assert_allclose(float(d_loss), float(ref_d_loss), rtol=1e-5)
    for ours, ref in ((gan.generator, ref_g), (gan.discriminator, ref_d)):
        for a, b in zip(ours.get_weights(), ref.get_weights()):  # includes BatchNorm moving statistics
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("conditional", [False, True])
def test_batchnorm_reestimation_is_a_training_mode_pass_of_the_whole_generator(tf, conditional):
    # recalibrate_batchnorm walks the layers one at a time to save memory; the statistics it
    # leaves must be those of calling the whole model in training mode on the same inputs.
    import keras

    from mnistgan.config import ModelConfig
    from mnistgan.models import all_layers, build_generator, recalibrate_batchnorm
    from mnistgan.seeds import recalibration_inputs

    cfg = ModelConfig(noise_dim=12, conditional=conditional, num_classes=10 if conditional else None)

    def statistics(generator):
        norms = [l for l in all_layers(generator) if isinstance(l, keras.layers.BatchNormalization)]
        assert len(norms) == 3
        return norms, [v.numpy() for l in norms for v in (l.moving_mean, l.moving_variance)]

    walked, whole = build_generator(cfg, 5), build_generator(cfg, 5)
    recalibrate_batchnorm(walked, cfg, seed=5, batch_size=16, batches=2)
    norms, untouched = statistics(whole)
    noise, digits = recalibration_inputs(5, 32, cfg.noise_dim, 10 if conditional else 1)
    for layer in norms:
        layer.momentum = 0.0
    whole([noise, digits] if conditional else noise, training=True)
    expected, got = statistics(whole)[1], statistics(walked)[1]
    assert not np.allclose(expected[0], untouched[0])  # the pass did move the statistics
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


@pytest.mark.slow
def test_the_r1_penalty_flattens_the_discriminator_at_real_images(tf):
    """With --r1 the discriminator learns to be flat around real images: after the same 20
    steps from the same start, its logit's squared gradient there is far smaller."""
    from conftest import make_digits

    from mnistgan.config import ModelConfig, TrainConfig
    from mnistgan.gan import DCGAN

    images, labels = make_digits(8)
    real = tf.constant((images[:32, ..., None].astype("float32") - 127.5) / 127.5)
    batches = tf.constant(np.random.default_rng(0).integers(0, len(images), (20, 16)).astype(np.int32))

    def sharpness(r1: float) -> float:
        gan = DCGAN(ModelConfig(), TrainConfig(batch_size=16, learning_rate=1e-3, beta1=0.0, r1=r1, ema_decay=0))
        on_device = gan.place_data(images, labels)
        losses = gan.run_steps(*on_device, batches, tf.constant(0, tf.int64), tf.constant(0, tf.int64),
                               tf.constant(20, tf.int64), r1 > 0)
        assert np.isfinite(losses.numpy()).all()
        with tf.GradientTape() as tape:
            tape.watch(real)
            total = tf.reduce_sum(gan.discriminator(real, training=False))
        return float(tf.reduce_mean(tf.reduce_sum(tf.square(tape.gradient(total, real)), [1, 2, 3])))

    assert sharpness(100.0) < sharpness(0.0) / 5
