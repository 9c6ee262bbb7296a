"""The report's training code (Listings 5-13) ported to TensorFlow 2 / Keras 3 as plainly as possible.

This is the reference `benchmarks/train_speed.py` measures mnistgan against: Keras Sequential
models, a tf.data pipeline (`from_tensor_slices(...).shuffle(...).batch(256)`) and one
`tf.function` train step with two GradientTapes. No checkpoints or images: only the training
work is timed, which favours this port. Kept deliberately unoptimised.

    python benchmarks/plain_port.py --data ../shared/data/mnist.npz --subset 15360 --epochs 1
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402

BATCH_SIZE = 256
NOISE_DIM = 100


def make_generator():
    return keras.Sequential([
        keras.Input((NOISE_DIM,)),
        keras.layers.Dense(7 * 7 * 256, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(0.3),
        keras.layers.Reshape((7, 7, 256)),
        keras.layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(0.3),
        keras.layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(0.3),
        keras.layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False,
                                     activation="tanh"),
    ])


def make_discriminator():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"),
        keras.layers.LeakyReLU(0.3),
        keras.layers.Dropout(0.3),
        keras.layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"),
        keras.layers.LeakyReLU(0.3),
        keras.layers.Dropout(0.3),
        keras.layers.Flatten(),
        keras.layers.Dense(1),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--gpu", action="store_true", help="fail unless TensorFlow sees a GPU")
    args = parser.parse_args()
    if args.gpu and not tf.config.list_physical_devices("GPU"):
        raise SystemExit("no GPU visible to TensorFlow")

    with np.load(args.data) as f:
        train_images = f["x_train"][: args.subset]
    train_images = train_images.reshape(train_images.shape[0], 28, 28, 1).astype("float32")
    train_images = (train_images - 127.5) / 127.5
    dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(len(train_images)).batch(BATCH_SIZE)

    generator, discriminator = make_generator(), make_discriminator()
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = keras.optimizers.Adam(1e-4)
    discriminator_optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([BATCH_SIZE, NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = cross_entropy(tf.ones_like(real_output), real_output) + cross_entropy(
                tf.zeros_like(fake_output), fake_output)
        gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
        disc_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gen_grads, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(disc_grads, discriminator.trainable_variables))

    for epoch in range(args.epochs):
        start = time.time()
        for image_batch in dataset:
            train_step(image_batch)
        seconds = time.time() - start
        print(f"epoch {epoch + 1}: {seconds:.2f} s, {len(train_images) / seconds:.1f} images/s", flush=True)


if __name__ == "__main__":
    main()
