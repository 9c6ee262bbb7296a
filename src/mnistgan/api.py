"""mnistgan's Python API: everything the command line does, as functions that return values.

    import mnistgan
    run = mnistgan.train("out/", recipe="fast", minutes=10, data="mnist.npz")
    g = run.generator()                     # the latest checkpoint's averaged generator
    images = g.sample(16, seed=1)           # uint8 (16, 28, 28): what `mnistgan sample --seed 1 --out x.npy` writes
    mnistgan.grid(images)                   # a PIL image; shows inline in Jupyter
    mnistgan.evaluate(images, data="mnist.npz")

Errors are :class:`mnistgan.MnistganError` subclasses whose messages name the arguments of these
functions. See docs/api.md.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnistgan.conditioning import either
from mnistgan.config import FOLDER_SETTINGS, RunConfig, TrainConfig
from mnistgan.console import TrainingReporter
from mnistgan.data import preview_sheet as data_sheet
from mnistgan.epochlog import CHUNK_FIELDS, METRIC_FIELDS, Reporter, read_rows
from mnistgan.errors import RunError, UsageError
from mnistgan.evaluation import load_samples, score_images
from mnistgan.images import Sheet, grid_pixels
from mnistgan.imagefolder import Conversion
from mnistgan.monitoring import BEST_FIELD, CONDITIONAL_FIELDS, EVAL_FIELDS, kept_best
from mnistgan.runs import RunLayout
from mnistgan.sampling import load_generator
from mnistgan.training import TrainRequest, run_training


class Table(list):
    """Rows (dicts) of a run's CSV file; renders as an HTML table in Jupyter."""

    def column(self, name: str) -> list:
        """One column's values, in row order."""
        return [row[name] for row in self]

    def _repr_html_(self) -> str:
        if not self:
            return "<p>(no rows)</p>"
        head = "".join(f"<th>{html.escape(k)}</th>" for k in self[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{v:.4g}</td>" if isinstance(v, float) else f"<td>{v}</td>" for v in row.values())
            + "</tr>" for row in self
        )
        return f"<table><tr>{head}</tr>{body}</table>"


@dataclass
class Run:
    """A run folder written by :func:`train`: its settings, progress, scores and generators."""

    path: Path
    config: RunConfig
    # Set by train(): why that call stopped before the run's last epoch (its time budget), or None.
    stopped: str | None = None
    # Set by train() in a multi-worker run's other processes ("worker 1"), which write nothing.
    worker: str | None = None

    def __repr__(self) -> str:
        kind = ", conditional" if self.config.model.conditional else ""
        return (f"<mnistgan.Run {str(self.path)!r}: recipe {self.config.train.recipe}{kind}, "
                f"{self.epochs_done} of {self.config.train.epochs} epochs>")

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.path)

    @property
    def epochs_done(self) -> int:
        """Completed epochs, by the newest epoch checkpoint on disk."""
        return max(self.layout.checkpoint_epochs(), default=0)

    def stop(self) -> dict | None:
        """Where and why training last stopped inside an epoch it has not completed since
        (``epoch``, ``step``, ``steps`` of the epoch, ``reason``: "the time budget", "a signal",
        ...), from stopped.json; None otherwise."""
        try:
            record = json.loads(self.layout.stop_record.read_text())
        except (OSError, ValueError):
            return None
        keys = {"epoch", "step", "steps", "reason"}
        if not isinstance(record, dict) or not keys <= set(record) or record["epoch"] != self.epochs_done + 1:
            return None  # none, damaged, or of an epoch completed since
        return record

    def checkpoint_epochs(self) -> list[int]:
        """The epochs whose checkpoint is on disk (the last ``keep`` of them), oldest first."""
        return self.layout.checkpoint_epochs()

    def grid_epochs(self) -> list[int]:
        """The epochs whose fixed-noise grid is on disk (see :meth:`epoch_grid`), oldest first."""
        return self.layout.grid_epochs()

    def metrics(self) -> Table:
        """metrics.csv: per epoch, the mean losses, seconds and images per second."""
        return Table(read_rows(self.layout.metrics, METRIC_FIELDS, up_to_epoch=10**9))

    def losses(self) -> Table:
        """losses.csv: the mean losses of each chunk of steps (``epochs``: the run's progress at
        the chunk's end, in epochs), a finer curve than :meth:`metrics` gives; written at each
        epoch's end and at a stop."""
        return Table(read_rows(self.layout.chunk_losses, CHUNK_FIELDS, up_to_epoch=10**9, keys=("epoch", "step")))

    def evaluations(self) -> Table:
        """evaluation.csv: the scores of runs trained with ``eval_every``, and ``best``: 1 on the
        row of the epoch kept as ``generator("best")``."""

        fields = CONDITIONAL_FIELDS if self.config.model.conditional else EVAL_FIELDS
        return Table(read_rows(self.layout.evaluation, (*fields, BEST_FIELD), up_to_epoch=10**9))

    @property
    def best_epoch(self) -> int | None:
        """The epoch kept as ``generator("best")`` (the scored epoch with the lowest FID); None
        for runs trained without ``eval_every``."""

        return kept_best(self.evaluations())

    def epoch_grid(self, epoch: int | None = None):
        """The fixed-noise grid saved after ``epoch`` (default: the last one) as a PIL image."""
        from PIL import Image

        epoch = self.epochs_done if epoch is None else epoch
        path = self.layout.epoch_image(epoch)
        if not path.is_file():
            raise RunError(f"{self.path} has no grid for epoch {epoch}")
        with Image.open(path) as im:
            return im.copy()

    def generator(self, ckpt: str | int = "latest", ema: bool | None = None):
        """The generator at ``ckpt``: ``"latest"``, ``"best"``, an epoch number, or a checkpoint path; the
        averaged one unless ``ema=False`` (see :class:`mnistgan.Generator`)."""

        return load_generator(self.path, ckpt, ema)


def open_run(path: Path | str) -> Run:
    """A finished or interrupted run folder."""
    layout = RunLayout(Path(path))
    return Run(layout.root, layout.load_config())


def _reporter(progress: bool | Reporter) -> Reporter:
    if progress is True:
        return TrainingReporter()
    return progress or Reporter()


def train(
    out: Path | str = "out",
    *,
    data: Path | str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    minutes: float | None = None,
    gpu: bool = False,
    mixed_precision: bool | None = None,
    progress: bool | Reporter = True,
    switch_data: bool = False,
    **settings: Any,
) -> Run:
    """Train a run into the folder ``out`` (or continue it with ``resume=True``); returns the Run.

    ``settings`` are the fields of :class:`~mnistgan.config.TrainConfig` and
    :class:`~mnistgan.config.ModelConfig` (``epochs=5``, ``recipe="fast"``, ``conditional=True``,
    ``learning_rate=2e-4``, ...); those not given come from the recipe, or from the run itself
    when resuming. ``minutes`` stops training cleanly after that much time (a checkpoint is
    saved; ``resume=True`` continues). ``progress``: True shows a progress bar (terminal or
    notebook) and a line per epoch, False nothing, or a :class:`mnistgan.Reporter` of your own.
    ``switch_data``: let a resume continue on data other than the run's (its content is checked,
    not its path).
    """

    request = TrainRequest(
        out=Path(out), data=None if data is None else Path(data), resume=resume, overwrite=overwrite, gpu=gpu,
        mixed_precision=mixed_precision, minutes=minutes, switch_data=switch_data,
        settings={k: v for k, v in settings.items() if v is not None},
    )
    reporter = _reporter(progress)
    try:
        result = run_training(request, reporter)
    finally:
        reporter.close()
    return Run(result.layout.root, result.config, stopped=result.stopped, worker=result.task)


def grid(images: np.ndarray, rows: int | None = None, cols: int | None = None, scale: int = 1):
    """uint8 images (N, 28, 28) laid out as a PIL image: ``rows`` and ``cols`` as given, the
    other as few as N needs, or as square as N allows."""
    from PIL import Image

    return Image.fromarray(grid_pixels(np.asarray(images), rows, cols, scale))


def preview_dataset(data: Path | str | None = None, scale: int = 1, **folder_settings: Any):
    """The report's 10x20 grid of training images (row d: the first 20 of digit d; a row per
    class for other data) as a PIL image; :func:`preview_sheet` gives the images and the grid.
    ``folder_settings``: how a folder of images is read (``invert``, ``center``, ``test_fraction``,
    ``skip_unreadable``, as for :func:`train`)."""

    return grid(*preview_sheet(data, **folder_settings), scale=scale)


def preview_sheet(data: Path | str | None = None, notify: Callable[[str], None] | None = None,
                  **folder_settings: Any) -> Sheet:
    """The preview's images and its grid (rows, cols): see :func:`preview_dataset`. ``notify``
    hears what reading the data has to say (files skipped, a folder that may want ``invert``)."""
    return data_sheet(None if data is None else Path(data), conversion(folder_settings), notify)


def conversion(folder_settings: dict[str, Any]) -> Conversion:
    """How a folder of images is read, from the settings of that name (None: not given); checked as train checks them."""
    unknown = set(folder_settings) - set(FOLDER_SETTINGS)
    if unknown:
        raise UsageError(f"unknown setting {', '.join(sorted(unknown))} (a folder of images takes "
                         f"{', '.join(FOLDER_SETTINGS)})")
    try:
        checked = TrainConfig.create({k: v for k, v in folder_settings.items() if v is not None})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Conversion(**checked.folder_settings)


def evaluate(images: np.ndarray | Path | str, data: Path | str | None = None, classes: np.ndarray | None = None,
             retrain: bool = False, progress: Callable[[int, int], None] | None = None,
             notify: Callable[[str], None] | None = None, classifier: Path | str | None = None,
             digits: np.ndarray | None = None, **folder_settings: Any):
    """Score images against MNIST: the numbers ``mnistgan evaluate --json`` prints, as an
    :class:`~mnistgan.evaluation.Evaluation`. ``images``: uint8 (N, 28, 28), or a file of them
    (a .npy of uint8 or of floats in [-1, 1], or a folder of 28x28 PNGs). ``classes``: the class
    each image was asked to be, for a conditional generator's samples (``digits``, its older
    name, too; ``Generator.evaluate`` scores a generator). MNIST is scored by the scorer shipped with mnistgan, the same on every
    machine; other data by a classifier trained on first use and cached (``progress`` and
    ``notify`` hear about that). ``classifier``: a Keras file to score with instead, a model from
    images (N, 28, 28, 1) in [-1, 1] to (features, logits). The result's ``scored_by`` says which.
    ``folder_settings``: how a folder of images given as ``data`` is read (``invert``, ``center``,
    ...: as for :func:`train`)."""

    source = "images"
    if isinstance(images, (str, Path)):
        source, images = str(images), load_samples(Path(images))
    digits = either(classes, digits, "classes", "digits")
    return score_images(images, None if data is None else Path(data), digits, source=source, retrain=retrain,
                        progress=progress, notify=notify, conversion=conversion(folder_settings),
                        classifier=classifier)
