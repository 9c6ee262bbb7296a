"""Screen optimisation settings for a fast recipe: quality against training images seen.

Trains the project's generator and discriminator (mnistgan.models) with a loop of its own whose
settings are all flags (batch, both learning rates, Adam's betas, loss, R1 penalty, label
smoothing, several averaged generators at once), and scores the trained generator and each
average like `mnistgan evaluate` at the given numbers of images seen. Scoring by images, not by
time, lets several screens share a machine: what a setting reaches after N images does not
depend on how busy the CPU was. One JSON line per mark on stdout.

    python benchmarks/screen_recipe.py --data mnist.npz --tag J --batch 32 --lr-g 1e-3 --lr-d 1e-3 \\
        --beta1 0 --beta2 0.99 --r1 0.2 --evals 20000,40000,80000
    python benchmarks/screen_recipe.py ... --clusters 100 --recluster 20000,40000 --evals 80000

docs/fast.md lists the screens behind the fast recipe.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="mnist.npz (default: $MNISTGAN_DATA or Keras's cache)")
    p.add_argument("--tag", default="")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr-g", type=float, default=1e-4)
    p.add_argument("--lr-d", type=float, default=1e-4)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--loss", choices=("ns", "hinge"), default="ns", help="non-saturating or hinge")
    p.add_argument("--r1", type=float, default=0.0, help="R1 penalty weight gamma")
    p.add_argument("--smooth", type=float, default=0.0, help="one-sided label smoothing of real images")
    p.add_argument("--ema", default="0.999", help="comma-separated decays of averaged generators")
    p.add_argument("--evals", default="20000,40000,80000", help="images seen at which to score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conditional", action="store_true")
    p.add_argument("--clusters", type=int, default=0, help="self-conditioning on K k-means clusters (no labels)")
    p.add_argument("--features", default="pixels",
                   help="what k-means clusters: pixels, pca, or disc (the untrained discriminator's features)")
    p.add_argument("--recluster", default="",
                   help="images seen (comma-separated) at which to cluster again, on the discriminator's "
                        "features, new clusters numbered after the old ones they overlap most")
    p.add_argument("--uniform", action="store_true", help="the generator picks clusters uniformly, not by size")
    p.add_argument("--n-eval", type=int, default=5000, help="samples per score")
    return p.parse_args()


def main() -> None:
    a = parse_args()
    from mnistgan.backend import import_tensorflow

    tf = import_tensorflow()
    import keras

    from mnistgan.classifier import load_or_train
    from mnistgan.config import ModelConfig
    from mnistgan.data import load_mnist
    from mnistgan.evaluation import classifier_scores
    from mnistgan.images import to_uint8
    from mnistgan.models import (
        build_discriminator,
        build_generator,
        discriminator_inputs,
        generated_labels,
        network_inputs,
        recalibrate_batchnorm,
    )

    mnist = load_mnist(a.data)
    classifier = load_or_train(lambda: mnist)
    train_labels = mnist.y_train
    cfg = ModelConfig(conditional=a.conditional, num_classes=10 if a.conditional else None)  # MNIST
    if a.clusters:
        from mnistgan import clusters

        sizes = (1,) * a.clusters  # placeholders until the clusters are known
        cfg = ModelConfig(clusters=a.clusters, cluster_sizes=sizes)
    gen, disc = build_generator(cfg, a.seed), build_discriminator(cfg, a.seed)
    features_of = keras.Model(disc.inputs[0] if cfg.classes else disc.inputs,
                              next(x for x in disc.layers if isinstance(x, keras.layers.Flatten)).output)

    def disc_features() -> np.ndarray:
        """The discriminator's flattened features (N x 6272, before its last Dense; dropout off) of
        every training image, reduced to clusters.PCA_COMPONENTS principal components."""
        from sklearn.decomposition import PCA

        x = np.concatenate([features_of((mnist.x_train[i : i + 2000, ..., None].astype(np.float32) - 127.5) / 127.5,
                                        training=False).numpy() for i in range(0, len(mnist.x_train), 2000)])
        return PCA(clusters.PCA_COMPONENTS, random_state=a.seed).fit_transform(x)

    def cluster(previous: np.ndarray | None) -> np.ndarray:
        """k-means on the chosen features; with ``previous``, on the discriminator's features and
        each new cluster numbered after the old one it shares most images with (Hungarian matching)."""
        from sklearn.cluster import KMeans

        if previous is None and a.features != "disc":
            return clusters.assign(mnist.x_train, a.clusters, a.seed, a.features)
        found = KMeans(a.clusters, n_init=1, random_state=a.seed).fit_predict(disc_features())
        if previous is None:
            order = np.argsort(-np.bincount(found, minlength=a.clusters), kind="stable")
            return np.argsort(order)[found].astype(np.int32)
        from scipy.optimize import linear_sum_assignment

        shared = np.zeros((a.clusters, a.clusters), np.int64)
        np.add.at(shared, (found, previous), 1)
        new, old = linear_sum_assignment(-shared)
        renumber = np.empty(a.clusters, np.int64)
        renumber[new] = old
        moved = float(np.mean(renumber[found] != previous))
        print(json.dumps({"tag": a.tag, "reclustered": True, "moved": round(moved, 4)}), flush=True)
        return renumber[found].astype(np.int32)

    def use_clusters(assignment: np.ndarray) -> None:
        """Real batches carry ``assignment``; every generator picks clusters by their new sizes."""
        nonlocal cfg
        sizes = (1,) * a.clusters if a.uniform else clusters.sizes_of(assignment, a.clusters)
        cfg = ModelConfig(clusters=a.clusters, cluster_sizes=sizes)
        for model in (gen, *averages):
            model.get_layer("cluster").layers[-1].bin_boundaries = [
                float(b) for b in clusters.bounds(sizes, cfg.noise_dim)]
        labels.assign(assignment.astype(np.int32))
    decays = [float(x) for x in a.ema.split(",")]
    averages = [build_generator(cfg, a.seed) for _ in decays]
    for avg in averages:
        for x, v in zip(avg.variables, gen.variables):
            x.assign(v)
    opt_g = keras.optimizers.Adam(a.lr_g, beta_1=a.beta1, beta_2=a.beta2)
    opt_d = keras.optimizers.Adam(a.lr_d, beta_1=a.beta1, beta_2=a.beta2)
    opt_g.build(gen.trainable_variables)
    opt_d.build(disc.trainable_variables)
    images, labels = tf.constant(mnist.x_train), tf.Variable(train_labels.astype(np.int32), trainable=False)
    if a.clusters:
        use_clusters(cluster(None))
    updates = tf.Variable(0.0)

    def d_logits(x, digits):
        return disc(discriminator_inputs(cfg, x, digits), training=True)

    @tf.function
    def step(idx, key):
        real = (tf.cast(tf.gather(images, idx)[..., None], tf.float32) - 127.5) / 127.5
        real_digits = tf.gather(labels, idx)
        n = tf.shape(idx)[0]
        noise = tf.random.stateless_normal([n, cfg.noise_dim], seed=key)
        fake_digits = tf.random.stateless_uniform([n], seed=key + 1, maxval=10, dtype=tf.int32)
        fake_digits = generated_labels(gen, cfg, noise, fake_digits)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = gen(network_inputs(cfg, noise, fake_digits), training=True)
            penalty = 0.0
            if a.r1 > 0:
                with tf.GradientTape() as r1_tape:
                    r1_tape.watch(real)
                    real_logits = d_logits(real, real_digits)
                    total = tf.reduce_sum(real_logits)
                grads = r1_tape.gradient(total, real)
                penalty = a.r1 / 2 * tf.reduce_mean(tf.reduce_sum(tf.square(grads), [1, 2, 3]))
            else:
                real_logits = d_logits(real, real_digits)
            fake_logits = d_logits(fake, fake_digits)
            if a.loss == "ns":
                d_loss = tf.reduce_mean((1 - a.smooth) * tf.nn.softplus(-real_logits)
                                        + a.smooth * tf.nn.softplus(real_logits)) + tf.reduce_mean(
                    tf.nn.softplus(fake_logits))
                g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
            else:
                d_loss = tf.reduce_mean(tf.nn.relu(1 - real_logits)) + tf.reduce_mean(tf.nn.relu(1 + fake_logits))
                g_loss = -tf.reduce_mean(fake_logits)
            d_loss += penalty
        opt_g.apply(g_tape.gradient(g_loss, gen.trainable_variables), gen.trainable_variables)
        opt_d.apply(d_tape.gradient(d_loss, disc.trainable_variables), disc.trainable_variables)
        t = updates
        for avg, decay in zip(averages, decays):  # mnistgan's warm-up: (1 + t) / (10 + t)
            d = tf.minimum(decay, (1 + t) / (10 + t))
            for x, v in zip(avg.trainable_variables, gen.trainable_variables):
                x.assign(d * x + (1 - d) * v)
        updates.assign_add(1)
        return g_loss, d_loss

    @tf.function
    def chunk(batches, first_key):
        g_loss = d_loss = tf.constant(0.0)
        for i in tf.range(tf.shape(batches)[0]):
            g_loss, d_loss = step(batches[i], tf.stack([tf.constant(a.seed, tf.int64),
                                                        first_key + tf.cast(i, tf.int64)]))
        return g_loss, d_loss

    def score(model):
        recalibrate_batchnorm(model, cfg, a.seed, 256)
        noise = np.random.default_rng(1).standard_normal((a.n_eval, cfg.noise_dim), dtype=np.float32)
        asked = np.arange(a.n_eval, dtype=np.int32) % 10
        drawn = to_uint8(np.concatenate([
            model(network_inputs(cfg, noise[i : i + 1000], asked[i : i + 1000]), training=False).numpy()
            for i in range(0, a.n_eval, 1000)]))
        s = classifier_scores(drawn, classifier, asked if a.conditional else None)
        out = {k: round(float(s[k]), 4) for k in ("fid", "confident", "coverage")}
        if a.conditional:
            out["as_asked"] = round(float(s["conditional_accuracy"]), 4)
        return out

    marks = sorted(int(x) for x in a.evals.split(","))
    reclusters = {int(x) for x in a.recluster.split(",") if x}
    if reclusters and not a.clusters:
        sys.exit("--recluster needs --clusters")
    stops = sorted(set(marks) | {r for r in reclusters if r < marks[-1]})
    rng = np.random.default_rng(a.seed)
    order = np.empty(0, np.int32)
    seen = key = 0
    seconds = 0.0
    while seen < marks[-1]:
        target = next(m for m in stops if m > seen)
        steps = -(-(target - seen) // a.batch)
        while len(order) < steps * a.batch:  # epochs of shuffled indices, back to back
            order = np.concatenate([order, rng.permutation(len(mnist.x_train)).astype(np.int32)])
        batches, order = order[: steps * a.batch].reshape(steps, a.batch), order[steps * a.batch :]
        t0 = time.perf_counter()
        for c in range(0, steps, 20):
            g_loss, d_loss = chunk(tf.constant(batches[c : c + 20]), tf.constant(key, tf.int64))
            key += min(20, steps - c)
            if not np.isfinite(float(g_loss)):
                print(json.dumps({"tag": a.tag, "seen": seen, "diverged": True}), flush=True)
                sys.exit(1)
        seconds += time.perf_counter() - t0
        seen += steps * a.batch
        if target in marks:
            row = {"tag": a.tag, "seen": seen, "steps": key, "train_s": round(seconds, 1),
                   "g_loss": round(float(g_loss), 3), "d_loss": round(float(d_loss), 3), "raw": score(gen)}
            for avg, decay in zip(averages, decays):
                row[f"ema{decay}"] = score(avg)
            print(json.dumps(row), flush=True)
        if target in reclusters:
            use_clusters(cluster(labels.numpy()))
            # The compiled step holds the old cluster bounds: trace it again.
            step, chunk = tf.function(step.python_function), tf.function(chunk.python_function)

if __name__ == "__main__":
    main()
