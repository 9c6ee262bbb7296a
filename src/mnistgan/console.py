"""All terminal output: results on stdout, progress and errors on stderr (rich).

On a terminal training shows a live progress bar, in a Jupyter notebook an HTML one; otherwise
(CI, pipes, log files) one plain line per epoch, so logs stay readable.
"""

from __future__ import annotations

import html
import sys
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mnistgan.epochlog import EpochMetrics, Reporter
from mnistgan.errors import Note, option

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def result(text: str) -> None:
    """A result the user asked for (a path, a table): stdout."""
    out.print(text, markup=False)


def info(text: str) -> None:
    """Progress and notes: stderr, so stdout stays clean for scripts. A Note names its
    arguments as the command line's options."""
    err.print(text.render(option) if isinstance(text, Note) else text, markup=False)


def error(text: str) -> None:
    """One line, no traceback."""
    print(f"Error: {text}", file=sys.stderr)


def format_metrics(m: EpochMetrics) -> str:
    return (
        f"epoch {m.epoch}: generator loss {m.generator_loss:.4f}, discriminator loss "
        f"{m.discriminator_loss:.4f}, {m.seconds:.1f} s, {m.images_per_second:.0f} images/s"
    )


def notebook_display():
    """IPython's ``display`` when this process is a Jupyter kernel, else None."""
    ipython = sys.modules.get("IPython")  # a kernel has imported it; never import it here
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:  # none, or a terminal IPython
        return None
    from IPython.display import display

    return display


class _BarView:
    """One state of a notebook progress bar: HTML for Jupyter, plain text for other front ends."""

    def __init__(self, label: str, done: int, total: int, left: float | None) -> None:
        self.label, self.done, self.total, self.left = label, done, total, left

    def _text(self) -> str:
        eta = "" if self.left is None else f", about {timedelta(seconds=round(self.left))} left"
        return f"{self.label}: {self.done}/{self.total} steps{eta}"

    def __repr__(self) -> str:
        return self._text()

    def _repr_html_(self) -> str:
        return (f'<progress value="{self.done}" max="{self.total}" style="width: 20em"></progress> '
                f"<code>{html.escape(self._text())}</code>")


class _NotebookBar:
    """A progress bar in a notebook cell's output, updated in place through an IPython display
    handle (no ipywidgets needed). It stays, showing the last epoch's steps, when training ends."""

    def __init__(self, display) -> None:
        self._display = display
        self._handle = None
        self._label, self._total, self._first, self._started = "", 0, 0, 0.0

    def start(self, label: str, total: int, done: int) -> None:
        self._label, self._total, self._first, self._started = label, total, done, time.monotonic()
        self.update(done)

    def update(self, done: int) -> None:
        left = None
        if self._first < done < self._total:
            left = (time.monotonic() - self._started) / (done - self._first) * (self._total - done)
        view = _BarView(self._label, done, self._total, left)
        if self._handle is None:
            self._handle = self._display(view, display_id=True)
        else:
            self._handle.update(view)


def _bar(label: str, total: int, done: int, *extra) -> tuple[Progress, object]:
    """A live progress bar on stderr, started, that disappears when stopped; and its task."""
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *extra, TimeRemainingColumn(),
                        console=err, transient=True)
    progress.start()
    return progress, progress.add_task(label, total=total, completed=done)


class TrainingReporter(Reporter):
    """Progress on the console, or in a notebook."""

    def __init__(self) -> None:
        self._live = err.is_terminal
        display = None if self._live else notebook_display()
        self._notebook = _NotebookBar(display) if display is not None else None
        self._progress: Progress | None = None
        self._task = None

    def message(self, text: str) -> None:
        info(text)

    def epoch_started(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        if self._notebook is not None:
            self._notebook.start(f"epoch {epoch}/{epochs}", steps, done)
        if not self._live:
            return
        self._progress, self._task = _bar(f"epoch {epoch}/{epochs}", steps, done, TextColumn("steps"))

    def steps_done(self, done: int) -> None:
        if self._notebook is not None:
            self._notebook.update(done)
        if self._progress is not None:
            self._progress.update(self._task, completed=done)

    def epoch_finished(self, metrics: EpochMetrics, image: Path | None) -> None:
        self.close()
        info(f"{format_metrics(metrics)}" + (f" -> {image}" if image is not None else ""))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class TaskProgress:
    """A progress bar on stderr that appears only once work is reported (and only on a terminal)."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> "TaskProgress":
        return self

    def update(self, done: int, total: int) -> None:
        if not err.is_terminal:
            return
        if self._progress is None:
            self._progress, self._task = _bar(self._label, total, 0)
        self._progress.update(self._task, completed=done)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


def evaluation_table(ev) -> None:
    """The evaluation as a table on stdout."""
    table = Table(title=f"{ev.count} samples from {ev.source}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    if ev.unscored:
        table.add_row("memorization_ratio", f"{ev.memorization_ratio:.3f}",
                      "nearest-training-image distance vs real test images; << 1 = copying")
        out.print(table)
        return
    table.add_row("fid", f"{ev.fid:.3f}", "Frechet distance to the test images' features; lower is better")
    table.add_row("inception_score", f"{ev.inception_score:.3f}", f"1 to {len(ev.classes)}; higher is better")
    table.add_row("coverage", f"{ev.coverage:.3f}", "balance over the classes; 1 = even")
    table.add_row("confident", f"{ev.confident:.1%}", "samples classified with >= 90% probability")
    table.add_row("memorization_ratio", f"{ev.memorization_ratio:.3f}",
                  "nearest-training-image distance vs real test images; << 1 = copying")
    table.add_row("classifier_accuracy", f"{ev.classifier_accuracy:.2%}", "the judge's accuracy on the test images")
    if ev.conditional_accuracy is not None:
        table.add_row("conditional_accuracy", f"{ev.conditional_accuracy:.1%}",
                      f"samples classified as the class asked for (chance: {1 / len(ev.classes):.0%})")
    out.print(table)
    if ev.scored_by:
        out.print(f"scored by {ev.scored_by}", markup=False, highlight=False)
    digits = Table(title="classes: share of samples classified as each class", title_justify="left")
    for d in range(len(ev.classes)):
        digits.add_column(ev.class_names[d] if ev.class_names else str(d), justify="right")
    digits.add_row(*(f"{s:.0%}" for s in ev.classes))
    if ev.digit_accuracy is not None:
        digits.add_row(*(f"{s:.0%}" for s in ev.digit_accuracy))
        digits.caption = "second row: accuracy for each class asked for"
    if ev.digit_diversity is not None:
        digits.add_row(*(f"{s:.2f}" for s in ev.digit_diversity))
        digits.caption += "; third row: variety within each class vs the real images' (1 = as varied, 0 = one image)"
    out.print(digits)
