"""Per-epoch CSV files (metrics.csv, evaluation.csv): rewritten whole and atomically each epoch.

A resumed run keeps only the rows its checkpoint covers; later rows are redone by training.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from mnistgan.files import write_text_atomic


def read_rows(path: Path, fields: Sequence[str], up_to_epoch: int) -> list[dict]:
    """Rows with ``epoch <= up_to_epoch``, values parsed (epoch as int, the rest as float)."""
    if not path.is_file():
        return []
    rows = []
    for rec in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
        try:
            row = {k: (int if k == "epoch" else float)(rec[k]) for k in fields}
        except (KeyError, TypeError, ValueError):
            continue  # a damaged line (atomic writes should make this impossible; do not trust it)
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
