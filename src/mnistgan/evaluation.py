"""`mnistgan evaluate`: how good and how varied are the digits? (metrics in mnistgan.metrics)"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnistgan import metrics
from mnistgan.data import load_mnist, run_data
from mnistgan.errors import DataError, UsageError, arg
from mnistgan.imagefolder import Conversion
from mnistgan.images import to_uint8
from mnistgan.seeds import every_class

MEMORIZATION_SAMPLES = 1000  # samples (and test images) compared pixel-wise with all training images


@dataclass(frozen=True)
class Evaluation:
    """Scores of samples. Data without labels has no classifier to judge them: only the
    memorization check is made, and ``unscored`` says why the rest is None."""

    source: str  # what was scored: a checkpoint or a samples file
    count: int  # images scored
    nearest_train_distance: float  # median pixel distance from a sample to its nearest training image
    test_nearest_train_distance: float  # the same for real test images, for comparison
    memorization_ratio: float  # the first over the second; well below 1 suggests copying
    fid: float | None = None  # Frechet distance to the test set, classifier features (lower is better)
    inception_score: float | None = None  # 1 .. K, the number of classes (higher is better)
    classes: list[float] | None = None  # share of samples classified as each class (0 .. K - 1)
    coverage: float | None = None  # normalized entropy of `classes`: 1 = balanced, 0 = a single class
    confident: float | None = None  # share of samples whose top class probability >= 0.9
    classifier_accuracy: float | None = None  # the classifier's test accuracy
    unscored: str | None = None  # why the classifier's scores are missing (data without labels)
    conditional_accuracy: float | None = None  # conditional runs: share classified as the digit asked for
    digit_accuracy: list[float] | None = None  # the same per class asked for (0 .. K - 1)
    # conditional runs: per class asked for, how much its samples vary relative to the real test
    # images of that class (pixel spread ratio; 1 = as varied as the data, near 0 = one image per class)
    digit_diversity: list[float] | None = None
    class_names: list[str] | None = None  # the data's names of its classes, in label order (None: numbered)
    scored_by: str | None = None  # the yardstick: mnistgan's MNIST scorer, a classifier trained here, or the user's

    def to_dict(self) -> dict:
        return asdict(self)


def load_samples(path: Path) -> np.ndarray:
    """Images to score: a .npy of uint8 (N, 28, 28) or floats in [-1, 1], or a folder of 28x28 PNGs."""
    path = Path(path)
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() == ".png"),
                       key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
        if not files:
            raise DataError(f"{path} holds no PNG files")
        images = []
        for p in files:
            try:
                with Image.open(p) as im:
                    arr = np.asarray(im.convert("L"))
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{p} is not a readable image ({exc})") from None
            if arr.shape != (28, 28):
                raise DataError(f"{p} is {arr.shape[1]}x{arr.shape[0]}; each PNG must be one 28x28 digit")
            images.append(arr)
        return np.stack(images)
    if path.suffix.lower() != ".npy":
        raise UsageError(f"{arg('samples')} takes a .npy file or a folder of PNGs, got {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path} is not a plain numpy array ({exc})") from None
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc})") from None
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3 or arr.shape[1:] != (28, 28) or len(arr) < 2:
        raise DataError(f"{path} has shape {arr.shape}; expected (N, 28, 28) with N >= 2")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or arr.min() < -1.0001 or arr.max() > 1.0001:
            raise DataError(f"{path} holds floats outside [-1, 1]; expected generator output or uint8 pixels")

        return to_uint8(arr)
    raise DataError(f"{path} has dtype {arr.dtype}; expected uint8 or float")


def classifier_scores(images: np.ndarray, classifier, requested: np.ndarray | None = None,
                      test_images: np.ndarray | None = None, test_labels: np.ndarray | None = None) -> dict:
    """The scores that need only the classifier (no pixel search over the training set): fid,
    inception_score, classes, coverage, confident and, with ``requested`` digits, the conditional
    ones (digit_diversity also needs the labelled test images). Shared by ``evaluate`` and
    ``train --eval-every``."""
    feats, probs = classifier.features_and_probs(images)
    mu, cov = metrics.feature_stats(feats)
    shares = metrics.class_shares(probs)
    out = {
        "fid": metrics.frechet_distance(mu, cov, classifier.reference_mean, classifier.reference_cov),
        "inception_score": metrics.inception_score(probs),
        "classes": [round(float(s), 4) for s in shares],
        "coverage": metrics.normalized_entropy(shares),
        "confident": metrics.confident_share(probs),
    }
    if requested is not None:
        hits = np.argmax(probs, axis=1) == requested
        out["conditional_accuracy"] = float(hits.mean())
        out["digit_accuracy"] = [round(float(hits[requested == d].mean()), 4) if np.any(requested == d)
                                 else float("nan") for d in range(probs.shape[1])]
        if test_images is not None and test_labels is not None:
            out["digit_diversity"] = [round(v, 4) for v in
                                      metrics.digit_diversity(images, requested, test_images, test_labels,
                                                              probs.shape[1])]
    return out


def score(images: np.ndarray, classifier, train_images: np.ndarray, test_images: np.ndarray,
          source: str, requested: np.ndarray | None = None, test_labels: np.ndarray | None = None) -> Evaluation:
    """All metrics for uint8 ``images`` (N, 28, 28); ``requested`` digits for conditional samples."""
    scores = classifier_scores(images, classifier, requested, test_images, test_labels)
    return Evaluation(source=source, count=len(images), **memorization(images, train_images, test_images),
                      classifier_accuracy=classifier.test_accuracy, scored_by=classifier.yardstick, **scores)


def memorization(images: np.ndarray, train_images: np.ndarray, test_images: np.ndarray) -> dict[str, float]:
    """How close samples come to the training images, against how close real test images come."""
    k = min(MEMORIZATION_SAMPLES, len(images), len(test_images))
    sample_nn = float(np.median(metrics.nearest_distances(images[:k], train_images)))
    test_nn = float(np.median(metrics.nearest_distances(test_images[:k], train_images)))
    return {"nearest_train_distance": sample_nn, "test_nearest_train_distance": test_nn,
            "memorization_ratio": sample_nn / test_nn if test_nn > 0 else float("nan")}


def score_images(
    images: np.ndarray,
    data: Path | str | None = None,
    digits: np.ndarray | None = None,
    *,
    source: str = "images",
    retrain: bool = False,
    progress: Callable[[int, int], None] | None = None,
    notify: Callable[[str], None] | None = None,
    conversion: Conversion | None = None,
    classifier: Path | str | None = None,
) -> Evaluation:
    """All scores for uint8 ``images`` (N, 28, 28) against MNIST (``data``: as for ``load_mnist``).

    ``digits``: the digit each image was asked to be (conditional generators), which adds the
    conditional scores. MNIST is scored by the scorer shipped with mnistgan; other data by a
    classifier trained on first use and cached (``progress`` and ``notify`` hear about that);
    ``classifier``, a Keras file, by that (classifier.own). ``conversion``: how a folder of images
    is read (a run's own).
    """
    from mnistgan.classifier import load_or_train

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) < 2:
        raise UsageError(f"images must be uint8 of shape (N, 28, 28) with N >= 2, not {images.dtype} {images.shape}")
    mnist = load_mnist(data, conversion=conversion)
    if not mnist.labelled and classifier is not None:
        raise UsageError(f"{mnist.source} has no labels, so {arg('classifier')} has no classes to judge by "
                         "(its test accuracy needs them)")
    if not mnist.labelled:  # no classifier to judge by: what needs none
        mnist.require_test_set("the memorization check compares with its test images")
        return Evaluation(source=source, count=len(images), **memorization(images, mnist.x_train, mnist.x_test),
                          unscored=f"{mnist.source} has no labels, so no classifier is trained on it: no FID, "
                                   "inception score, classes or confident share, only the memorization check")
    judge = load_or_train(  # which refuses data without a test set
        lambda: mnist, retrain=retrain, progress=progress or (lambda done, total: None),
        notify=notify or (lambda text: None), classifier=None if classifier is None else Path(classifier))
    scored = score(images, judge, mnist.x_train, mnist.x_test, source, digits, mnist.y_test)
    return replace(scored, class_names=list(mnist.class_names) or None)


def scored(generator, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The images that are scored for noise (N, noise_dim), by ``evaluate`` and by training's
    ``eval_every`` alike, and the class each was asked to be: a conditional generator is asked
    for every class equally often (0, 1, ..., K - 1, 0, ...); None for other generators."""
    asked = every_class(len(noise), generator.classes) if generator.conditional else None
    return generator.images(noise, asked), asked


def evaluate_generator(generator, n: int = 10_000, seed: int = 0, data: Path | str | None = None,
                       retrain: bool = False, truncation: float = 1.0,
                       progress: Callable[[int, int], None] | None = None,
                       notify: Callable[[str], None] | None = None,
                       classifier: Path | str | None = None) -> Evaluation:
    """Score ``n`` samples of ``generator`` (a :class:`~mnistgan.Generator`) against its run's
    data (``mnistgan evaluate``): see :func:`scored`. ``data``: as for
    :func:`~mnistgan.load_mnist`; by default the data the run was trained on (a DataError where
    it is gone: see :func:`mnistgan.data.run_data`). ``progress`` and ``notify`` hear about the
    classifier's training, the first time on data other than MNIST. ``classifier``: a Keras file
    to score with instead (see :func:`mnistgan.evaluate`)."""
    if n < 2:
        raise UsageError(f"{arg('n')} must be at least 2")
    data = data if data is not None else run_data(generator.config)  # before anything is drawn
    images, asked = scored(generator, generator.noise(n, seed, truncation))
    source = generator.describe(f"seed {seed}", *([f"truncation {truncation:g}"] if truncation != 1 else []))
    return score_images(images, data, asked, source=source, retrain=retrain, progress=progress, notify=notify,
                        conversion=Conversion(**generator.config.train.folder_settings), classifier=classifier)
