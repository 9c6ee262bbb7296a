"""The MNIST classifier behind `mnistgan evaluate`: trained locally on first use, then cached.

No weights are downloaded. A small CNN (two 3x3 convolutions, max-pooling, a 128-unit dense
layer whose activations are the "features" for the Frechet distance, and a 10-way softmax)
trained for a few epochs on the MNIST training set; its test accuracy is measured, stored and
reported. The cache holds a TensorFlow checkpoint (data, no code), the test set's feature
statistics and a small JSON file, under ``$XDG_CACHE_HOME/mnistgan`` (default ``~/.cache``), in
a folder per data set: a classifier trained on one set of images never judges against another.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistgan.backend import import_tensorflow
from mnistgan import files
from mnistgan.data import Mnist
from mnistgan.caches import touch
from mnistgan.errors import MnistganError
from mnistgan.metrics import feature_stats
from mnistgan.seeds import classifier_order, steps_per_epoch

tf = import_tensorflow()
import keras  # noqa: E402

VERSION = 1  # bump when the architecture or training recipe changes: old caches are then ignored
EPOCHS = 5  # the last one at a tenth of the learning rate: about 99.2% test accuracy
BATCH = 128
MIN_ACCURACY = 0.99


def cache_root() -> Path:
    """The folder of all cached classifiers of this version."""
    return files.cache_root() / f"classifier-v{VERSION}"


def build_classifier(classes: int, seed: int = 0) -> keras.Model:
    init = keras.initializers.GlorotUniform
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu", kernel_initializer=init(seed))(inputs)  # 26x26x32
    x = keras.layers.Conv2D(64, 3, activation="relu", kernel_initializer=init(seed + 1))(x)  # 24x24x64
    x = keras.layers.MaxPooling2D(2)(x)  # 12x12x64
    x = keras.layers.Dropout(0.25, seed=seed + 2)(x)
    x = keras.layers.Flatten()(x)
    features = keras.layers.Dense(128, activation="relu", name="features", kernel_initializer=init(seed + 3))(x)
    x = keras.layers.Dropout(0.5, seed=seed + 4)(features)
    logits = keras.layers.Dense(classes, kernel_initializer=init(seed + 5))(x)
    return keras.Model(inputs, [features, logits], name="mnist_classifier")


def _scaled(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32)[..., None] - 127.5) / 127.5  # the GAN's [-1, 1] convention


@dataclass
class Classifier:
    model: keras.Model
    test_accuracy: float
    reference_mean: np.ndarray  # feature statistics of the MNIST test set
    reference_cov: np.ndarray
    path: Path

    def features_and_probs(self, images: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """(N, 128) features and (N, K) class probabilities for uint8 images (N, 28, 28)."""
        feats, probs = [], []
        for i in range(0, len(images), batch):
            f, logits = self._predict(tf.constant(_scaled(images[i : i + batch])))
            feats.append(f.numpy())
            probs.append(tf.nn.softmax(logits).numpy())
        return np.concatenate(feats), np.concatenate(probs)

    @property
    def _predict(self):
        if not hasattr(self, "_fn"):
            self._fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        return self._fn


def _train(mnist: Mnist, progress: Callable[[int, int], None]) -> tuple[keras.Model, float]:
    model = build_classifier(classes=mnist.classes)
    x, y = mnist.x_train, mnist.y_train.astype(np.int32)
    steps = steps_per_epoch(len(x), BATCH)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([(EPOCHS - 1) * steps], [1e-3, 1e-4])
    opt = keras.optimizers.Adam(schedule)

    @tf.function(reduce_retracing=True)
    def step(images, labels):
        with tf.GradientTape() as tape:
            _, logits = model(images, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
        return loss

    total = EPOCHS * steps
    for epoch in range(EPOCHS):
        order = classifier_order(len(x), epoch)
        for s in range(steps):
            idx = order[s * BATCH : (s + 1) * BATCH]
            step(tf.constant(_scaled(x[idx])), tf.constant(y[idx]))
            progress(epoch * steps + s + 1, total)
    logits = np.concatenate(
        [model(tf.constant(_scaled(mnist.x_test[i : i + 1000])), training=False)[1].numpy()
         for i in range(0, len(mnist.x_test), 1000)]
    )
    accuracy = float(np.mean(np.argmax(logits, axis=1) == mnist.y_test))
    return model, accuracy


def load_or_train(
    load_data: Callable[[], Mnist],
    retrain: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
    notify: Callable[[str], None] = lambda text: None,
) -> Classifier:
    """The cached classifier of this data set, or a newly trained one (on first use or with ``retrain``)."""

    mnist = load_data()
    mnist.require_labels("the evaluation classifier is trained on them")
    mnist.require_test_set("evaluation scores samples against it")
    root = cache_root() / mnist.fingerprint
    meta_path = root / "meta.json"
    if not retrain and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            model = build_classifier(classes=mnist.classes)
            tf.train.Checkpoint(model=model).read(str(root / "weights")).assert_existing_objects_matched()
            with np.load(root / "reference.npz", allow_pickle=False) as ref:
                mean, cov = ref["mean"], ref["cov"]
            touch(root)  # last used now (mnistgan cache)
            return Classifier(model, float(meta["test_accuracy"]), mean, cov, root)
        except Exception as exc:  # a damaged cache is rebuilt, not trusted
            notify(f"the cached classifier in {root} is unreadable ({type(exc).__name__}); retraining")

    notify(f"training the evaluation classifier on the {len(mnist.x_train)} training images of {mnist.source} "
           f"({EPOCHS} epochs, once)")
    model, accuracy = _train(mnist, progress)
    if accuracy < MIN_ACCURACY:
        notify(f"warning: the classifier reached only {accuracy:.2%} test accuracy (on MNIST it reaches 99 %): "
               "its scores judge less surely")
    clf = Classifier(model, accuracy, np.zeros(0), np.zeros(0), root)
    feats, _ = clf.features_and_probs(mnist.x_test)
    clf.reference_mean, clf.reference_cov = feature_stats(feats)

    # Write the whole cache in a temporary folder, then swap it in: never half a cache.
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".classifier-", dir=root.parent))
    try:
        tf.train.Checkpoint(model=model).write(str(tmp / "weights"))
        np.savez(tmp / "reference.npz", mean=clf.reference_mean, cov=clf.reference_cov)
        (tmp / "meta.json").write_text(json.dumps(
            {"version": VERSION, "test_accuracy": accuracy, "data": mnist.source, "epochs": EPOCHS}, indent=2))
        _install(tmp, root, replace=retrain)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MnistganError(f"cannot write the classifier cache in {root.parent} ({exc.strerror})") from None
    clf.path = root
    return clf


def _install(tmp: Path, root: Path, replace: bool) -> None:
    """Rename the complete cache ``tmp`` to ``root``. Another process may have trained and
    installed the same data set's classifier meanwhile (two first evaluations at once): theirs
    is as good, and is kept unless ``replace`` (a retrain)."""
    if root.exists() and (replace or not (root / "meta.json").is_file()):
        old = root.with_name(f".{root.name}-old-{os.getpid()}")
        os.rename(root, old)
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(tmp, root)
    except OSError:
        if not (root / "meta.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # installed by another process since the check above
