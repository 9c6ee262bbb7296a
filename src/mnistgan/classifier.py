"""The classifier behind `mnistgan evaluate`: the yardstick every score is measured with.

Three kinds, chosen by :func:`load_or_train`:

- **MNIST: the scorer shipped with mnistgan** (``scorers/mnist.npz``), used whenever the data's
  test set is MNIST's, byte for byte (wherever the file is, and whichever copy of the training
  images it has), so that a score means the same on every machine and needs no training. Trained
  once by ``benchmarks/train_scorer.py``; its file is checked against :data:`MNIST_SCORER_SHA256`
  and refused when it differs, never replaced by a classifier trained here.
- **Other data: a classifier trained here** on the data's labels on first use, and cached under
  ``$XDG_CACHE_HOME/mnistgan`` (default ``~/.cache``) in a folder per data set: a TensorFlow
  checkpoint (data, no code), the test set's feature statistics and a small JSON file. Its scores
  compare only with scores by the same cached classifier.
- **A classifier of the user's**: a Keras file given as ``classifier``.

All are the same kind of network: two 3x3 convolutions, max-pooling, a 128-unit dense layer whose
activations are the "features" of the Frechet distance, and a softmax over the data's classes.
No weights are downloaded.
"""

from __future__ import annotations

import hashlib
import io
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
from mnistgan.errors import DataError, MnistganError, UsageError, arg
from mnistgan.metrics import feature_stats
from mnistgan.seeds import classifier_order, steps_per_epoch

tf = import_tensorflow()
import keras  # noqa: E402

VERSION = 1  # bump when the architecture or training recipe changes: old caches are then ignored
EPOCHS = 5  # the last one at a tenth of the learning rate: about 99.2% test accuracy
BATCH = 128
MIN_ACCURACY = 0.99
# The MNIST scorer shipped in the package: its weights (float16), trained by benchmarks/train_scorer.py.
MNIST_SCORER = Path(__file__).parent / "scorers" / "mnist.npz"
MNIST_SCORER_SHA256 = "ed4dac1ee28ad87f4e42c2faa4d33961b9c5e4bdb1e36353d7bd941db8b4d614"
# MNIST's test set (x_test, y_test as uint8), whose presence makes data MNIST for scoring: the
# official files' and every faithful copy's (the shared copy's training images differ by a grey level).
MNIST_TEST_SHA256 = "c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b"


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
    reference_mean: np.ndarray  # feature statistics of the data's test set
    reference_cov: np.ndarray
    path: Path
    yardstick: str = ""  # which classifier this is, as a score's reader needs to know (Evaluation.scored_by)

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


def train_classifier(mnist: Mnist, progress: Callable[[int, int], None] = lambda done, total: None
                     ) -> tuple[keras.Model, float]:
    """A classifier of ``mnist``'s classes trained on its training set (the same images in the same
    order every time: seeds.classifier_order), and its test accuracy."""
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


def is_mnist(mnist: Mnist) -> bool:
    """Whether the data's test set is MNIST's, byte for byte (see :data:`MNIST_TEST_SHA256`)."""
    if mnist.x_test is None or mnist.y_test is None:
        return False
    digest = hashlib.sha256(np.ascontiguousarray(mnist.x_test, np.uint8).data)
    digest.update(np.ascontiguousarray(mnist.y_test, np.uint8).data)
    return digest.hexdigest() == MNIST_TEST_SHA256


def scorer_weights(path: Path | None = None) -> list[np.ndarray]:
    """The shipped scorer's weights (``path``: :data:`MNIST_SCORER`), after checking the file's
    hash: a damaged or edited file is refused, never replaced by a classifier trained here."""
    path = MNIST_SCORER if path is None else path
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise MnistganError(f"cannot read mnistgan's MNIST scorer {path} ({exc.strerror}); reinstall mnistgan") from None
    if hashlib.sha256(blob).hexdigest() != MNIST_SCORER_SHA256:
        raise MnistganError(f"{path} is not mnistgan's MNIST scorer (its sha256 differs: damaged or edited); "
                            "reinstall mnistgan, or score with a classifier of your own")
    with np.load(io.BytesIO(blob), allow_pickle=False) as weights:
        return [weights[f"w{i}"].astype(np.float32) for i in range(len(weights.files))]


def _judged(model: keras.Model, mnist: Mnist, path: Path, yardstick: str) -> Classifier:
    """``model`` as the judge of ``mnist``: its test accuracy and the test set's feature statistics."""
    clf = Classifier(model, 0.0, np.zeros(0), np.zeros(0), path, yardstick)
    feats, probs = clf.features_and_probs(mnist.x_test)
    clf.test_accuracy = float(np.mean(np.argmax(probs, axis=1) == mnist.y_test))
    clf.reference_mean, clf.reference_cov = feature_stats(feats)
    return clf


def shipped(mnist: Mnist) -> Classifier:
    """mnistgan's MNIST scorer, judging ``mnist`` (whose test set is MNIST's)."""
    weights = scorer_weights()
    model = build_classifier(classes=len(weights[-1]))  # MNIST's digits: the output layer's bias says how many
    model.set_weights(weights)
    return _judged(model, mnist, MNIST_SCORER, f"mnistgan's MNIST scorer (sha256 {MNIST_SCORER_SHA256[:12]})")


def own(path: Path, mnist: Mnist) -> Classifier:
    """A classifier of the user's: a Keras file whose model maps images (N, 28, 28, 1) in [-1, 1]
    to (features (N, F), logits (N, K)), K the data's classes, as :func:`build_classifier`'s does."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{arg('classifier')} {path} does not exist")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds for a file it cannot read
        raise DataError(f"cannot read the classifier {path} as a Keras model ({type(exc).__name__})") from None
    shapes = [tuple(o.shape) for o in model.outputs]
    if tuple(model.inputs[0].shape[1:]) != (28, 28, 1) or len(shapes) != 2 or any(len(s) != 2 for s in shapes):
        raise DataError(f"the classifier {path} must map images (N, 28, 28, 1) in [-1, 1] to two outputs, "
                        f"features (N, F) and logits (N, K); it maps {tuple(model.inputs[0].shape)} to {shapes}")
    if shapes[1][1] != mnist.classes:
        raise DataError(f"the classifier {path} has {shapes[1][1]} classes; the data has {mnist.classes}")
    return _judged(model, mnist, path, f"the classifier {path}")


def load_or_train(
    load_data: Callable[[], Mnist],
    retrain: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
    notify: Callable[[str], None] = lambda text: None,
    classifier: Path | None = None,
) -> Classifier:
    """The judge of this data set: ``classifier`` (a Keras file of the user's) when given; the
    shipped scorer when the data is MNIST; else the cached classifier trained here, or a newly
    trained one (on first use or with ``retrain``)."""

    mnist = load_data()
    mnist.require_labels("the evaluation classifier is trained on them")
    mnist.require_test_set("evaluation scores samples against it")
    if classifier is not None:
        if retrain:
            raise UsageError(f"{arg('retrain')} retrains a classifier trained here; {arg('classifier')} is yours")
        return own(classifier, mnist)
    if is_mnist(mnist):
        if retrain:
            raise UsageError(f"MNIST is scored by mnistgan's shipped scorer, which is never retrained; {arg('retrain')} "
                             "is for classifiers trained here on other data")
        return shipped(mnist)
    root = cache_root() / mnist.fingerprint
    local = (f"a classifier trained here on {mnist.source} (scores compare only with this classifier's, "
             "not with MNIST's)")
    meta_path = root / "meta.json"
    if not retrain and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            model = build_classifier(classes=mnist.classes)
            tf.train.Checkpoint(model=model).read(str(root / "weights")).assert_existing_objects_matched()
            with np.load(root / "reference.npz", allow_pickle=False) as ref:
                mean, cov = ref["mean"], ref["cov"]
            touch(root)  # last used now (mnistgan cache)
            return Classifier(model, float(meta["test_accuracy"]), mean, cov, root, local)
        except Exception as exc:  # a damaged cache is rebuilt, not trusted
            notify(f"the cached classifier in {root} is unreadable ({type(exc).__name__}); retraining")

    notify(f"training the evaluation classifier on the {len(mnist.x_train)} training images of {mnist.source} "
           f"({EPOCHS} epochs, once)")
    model, accuracy = train_classifier(mnist, progress)
    if accuracy < MIN_ACCURACY:
        notify(f"warning: the classifier reached only {accuracy:.2%} test accuracy (on MNIST it reaches 99 %): "
               "its scores judge less surely")
    clf = Classifier(model, accuracy, np.zeros(0), np.zeros(0), root, local)
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
