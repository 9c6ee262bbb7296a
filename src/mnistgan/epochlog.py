"""What an epoch reports: its metrics, the reporter that shows progress, the events of the
training loop (a Callback's methods, and why training stopped), and the per-epoch CSV files
(metrics.csv, evaluation.csv), rewritten whole and atomically each epoch.

A resumed run keeps only the rows its checkpoint covers; later rows are redone by training.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mnistgan.errors import RunError
from mnistgan.files import write_text_atomic

METRIC_FIELDS = ("epoch", "generator_loss", "discriminator_loss", "seconds", "images_per_second")
# losses.csv: a row per chunk of steps. ``step``: the steps of the epoch done at the chunk's end;
# ``epochs``: the run's progress there, in epochs (epoch - 1 + step / steps per epoch); the losses
# are the chunk's means.
CHUNK_FIELDS = ("epoch", "step", "epochs", "generator_loss", "discriminator_loss")


@dataclass(frozen=True)
class EpochMetrics:
    """One line of metrics.csv."""

    epoch: int
    generator_loss: float  # mean over the epoch's steps
    discriminator_loss: float
    seconds: float  # wall-clock time of the epoch's steps
    images_per_second: float

    def row(self) -> dict[str, str]:
        return {
            "epoch": str(self.epoch),
            "generator_loss": f"{self.generator_loss:.6f}",
            "discriminator_loss": f"{self.discriminator_loss:.6f}",
            "seconds": f"{self.seconds:.3f}",
            "images_per_second": f"{self.images_per_second:.1f}",
        }


class Reporter:
    """How training tells the outside world about progress (the core never prints itself). This
    one shows nothing; a reporter of your own overrides what it shows."""

    def message(self, text: str) -> None:
        pass

    def epoch_started(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        pass

    def steps_done(self, done: int) -> None:
        pass

    def epoch_finished(self, metrics: EpochMetrics, image: Path | None) -> None:
        pass

    def close(self) -> None:
        """Training has ended (also by an error): let go of what the reporter shows."""


class StopReason(enum.Enum):
    SIGNAL = "a signal"  # Ctrl-C or SIGTERM to this process
    PEER = "another worker's signal"  # the workers of a multi-worker run stop together
    TIME_UP = "the time budget"


@dataclass(frozen=True)
class Stop:
    reason: StopReason
    signal: int = 0  # SIGNAL and PEER: the signal's number; the exit code is 128 + it


class Callback:
    """What happens around the loop's steps. The loop calls every callback in its list's order:
    ``epoch_started`` before an epoch's first chunk, ``chunk_done`` after each chunk of steps,
    ``epoch_done`` once the epoch is complete, and ``stopped`` when training stops mid-epoch."""

    def epoch_started(self, epoch: int, step: int) -> None:
        pass

    def chunk_done(self, epoch: int, step: int) -> None:
        pass

    def epoch_done(self, epoch: int, metrics: EpochMetrics) -> None:
        pass

    def stopped(self, epoch: int, step: int, stop: Stop) -> None:
        pass


def read_rows(path: Path, fields: Sequence[str], up_to_epoch: int, keys: Sequence[str] = ("epoch",)) -> list[dict]:
    """Rows with ``epoch <= up_to_epoch``, values parsed (the ``keys`` as int, the rest as float),
    in increasing order of the keys.

    A line that does not parse is an error, not a line to skip: a resume rewrites the file, and
    would drop it without a word. So is a file cut short (every line is written with its end, so
    a last line without one was cut, perhaps inside a number that still parses), a line with
    more values than the header, and epochs out of order. (Atomic writes should make all of
    these impossible; a hand edit or another program can still leave one.)
    """
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"cannot read {path} ({exc})") from None
    if text and not text.endswith("\n"):
        raise RunError(f"{path} is cut short: its last line ({text.splitlines()[-1]!r}) has no end; "
                       "mend or delete that line")
    rows = []
    reader = csv.DictReader(io.StringIO(text))
    missing = [k for k in fields if k not in keys and k not in (reader.fieldnames or ())]  # added since it was written
    for rec in reader:
        try:
            if None in rec or None in rec.values():  # more or fewer values than the header names
                raise ValueError
            row = {k: (int if k in keys else float)(rec[k]) for k in fields if k not in missing}
            row |= {k: float("nan") for k in missing}
            if rows and [row[k] for k in keys] <= [rows[-1][k] for k in keys]:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            line = ",".join(str(v) for k, v in rec.items() if k is not None)
            raise RunError(f"{path} line {reader.line_num} is damaged ({line!r}); mend or delete that line") from None
        if row["epoch"] <= up_to_epoch:
            rows.append(row)
    return rows


def write_rows(path: Path, fields: Sequence[str], rows: Sequence[dict]) -> None:
    """Write ``rows`` (values already formatted as strings, or numbers) with a header."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def read_metrics(path: Path, up_to_epoch: int) -> list[EpochMetrics]:
    """Metrics rows already written, for epochs a checkpoint covers (later rows are redone)."""
    return [EpochMetrics(**row) for row in read_rows(path, METRIC_FIELDS, up_to_epoch)]


def write_metrics(path: Path, rows: list[EpochMetrics]) -> None:
    write_rows(path, METRIC_FIELDS, [r.row() for r in rows])
