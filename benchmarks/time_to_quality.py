"""Quality against wall-clock training time, per recipe, over seeds.

Each (recipe, seed) trains on all 60,000 images with `train --minutes`, stopping at each mark
(e.g. 1, 2, 5, 10 minutes of training), where its latest state is scored like
`mnistgan evaluate` (10,000 samples). Training resumes exactly from each stop, so one run gives
the whole curve; each resume rebuilds the compiled step, a few seconds that the marks leave out
(a budget runs from the end of the first chunk of steps, which builds the graphs; before #49's
second fix they were counted).

`--per-mark` trains a run of its own for each mark instead, `train --minutes MARK` from the
start, as a user with that budget would: for a recipe whose schedule follows its budget (the
fast recipe's learning rates fall to the budget's end), stopping a longer run is not the same.
`--label` names the line (e.g. the code's commit), and `--import-csv` copies rows measured by
an older version of this script (which lack the newer columns) under a label of their own.
`--set NAME=VALUE` gives new runs a setting (a train option's field name: `--set lr_cooldown=0.5`).
`--resumed` trains each mark M as M/2 minutes, then `--resume --minutes M/2`: what a user who
asks for more minutes gets, against a run of M minutes at once.

Resumable: rows already in the CSV are skipped and a run folder continues where it stopped,
so the script can be stopped and started again. Timing needs the machine to itself: nothing
else should run while it does (the CSV records the CPU and its load at each mark).

    python benchmarks/time_to_quality.py --data mnist.npz --recipes report,fast --seeds 0,1,2 \\
        --marks 1,2,5,10 --out ttq/
    python benchmarks/time_to_quality.py --data mnist.npz --conditional --recipes fast --out ttq/
    python benchmarks/time_to_quality.py --data mnist.npz --recipes fast --clusters 0 --out ttq/
    python benchmarks/time_to_quality.py --data mnist.npz --recipes fast --lr-drop-after 640000 --out ttq/
    python benchmarks/time_to_quality.py --data mnist.npz --recipes fast --per-mark --label "fast (new)" --out ttq/
    python benchmarks/time_to_quality.py --plot ttq/   # the plot from the CSV alone

Writes OUT/time_to_quality.csv and OUT/time_to_quality.png (FID and confident share against
minutes, one line per recipe: the median over seeds, the range over seeds shaded).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
from pathlib import Path

FIELDS = ["recipe", "conditional", "clusters", "lr_drop_after", "seed", "minutes", "epochs", "fid", "confident",
          "coverage", "conditional_accuracy", "lowest_digit_accuracy", "cpu", "onednn_isa", "load1",
          "label", "dtype_policy", "per_mark", "images", "settings", "resumed", "scored_by"]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_rows(path: Path) -> list[dict]:
    """The CSV's rows; rows from before the clusters and lr_drop_after columns had none (their runs
    had no clusters and no drop)."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [{**row, "clusters": row.get("clusters") or "0", "lr_drop_after": row.get("lr_drop_after") or "",
                 "label": row.get("label") or "", "per_mark": row.get("per_mark") or "False",
                 "settings": row.get("settings") or "", "resumed": row.get("resumed") or "False"}
                for row in csv.DictReader(fh)]


def rewrite_rows(path: Path) -> None:
    """Bring an older CSV to today's columns."""
    rows = read_rows(path)
    if rows and list(rows[0]) != FIELDS:
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in FIELDS} for r in rows)


def append_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def images_seen(run) -> int:
    """Training images seen by the run's latest state: its progress in epochs (losses.csv) times
    the training set's size."""
    epochs = run.losses().column("epochs")
    n = 60_000 if run.config.train.subset is None else run.config.train.subset
    return round(epochs[-1] * n) if epochs else 0


def import_rows(table: Path, source: Path, label: str) -> None:
    """Copy ``source``'s rows into ``table`` under ``label``; rows already there are not copied again."""
    have = {tuple(r[k] for k in FIELDS) for r in read_rows(table)}
    for row in read_rows(source):
        row = {**{k: row.get(k, "") for k in FIELDS}, "label": label}
        if tuple(row[k] for k in FIELDS) not in have:
            append_row(table, row)


def measure(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "time_to_quality.csv"
    marks = [float(m) for m in args.marks.split(",")]
    rewrite_rows(table)
    kind = "conditional" if args.conditional else "unconditional"
    for recipe in args.recipes.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            drop = "" if args.lr_drop_after is None else str(args.lr_drop_after)
            name = (f"{recipe}-{kind}{'' if args.clusters is None else f'-clusters{args.clusters}'}"
                    f"{drop and f'-drop{drop}'}{args.label and '-' + slug(args.label)}-seed{seed}")
            if args.per_mark or args.resumed:
                for mark in marks:
                    measure_run(args, table, out / f"{name}-{mark:g}min{'-resumed' * args.resumed}", recipe, seed,
                                [mark])
            else:
                measure_run(args, table, out / name, recipe, seed, marks)


def settings(args) -> dict:
    """--set NAME=VALUE's settings, each value read as JSON where it can be (0.5, true), else text."""
    import json

    values = {}
    for item in args.set:
        name, _, value = item.partition("=")
        try:
            values[name] = json.loads(value)
        except ValueError:
            values[name] = value
    return values


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def measure_run(args, table: Path, run_dir: Path, recipe: str, seed: int, marks: list[float]) -> None:
    """Train ``run_dir`` to each of ``marks`` (minutes), scoring at each; rows already in the
    table for this run are skipped."""
    import mnistgan

    # What the run folder holds decides which rows are its own (a recipe's clusters and drop included).
    saved = mnistgan.open_run(run_dir).config if (run_dir / "config.json").is_file() else None
    done = {float(r["minutes"]) for r in read_rows(table)
            if r["recipe"] == recipe and r["seed"] == str(seed) and r["conditional"] == str(args.conditional)
            and saved is not None and r["clusters"] == str(saved.model.clusters)
            and r["label"] == args.label and r["per_mark"] == str(args.per_mark)
            and r["resumed"] == str(args.resumed)}
    trained = 0.0
    for mark in marks:
        if mark in done:
            trained = mark
            continue
        # A run stopped at an earlier mark (or killed between marks) continues from its checkpoint.
        # --resumed: the mark's first half, then the rest as more minutes.
        for until in ([mark / 2, mark] if args.resumed else [mark]):
            resume = (run_dir / "config.json").is_file()
            run = mnistgan.train(run_dir, data=args.data, recipe=recipe, seed=seed, conditional=args.conditional,
                                 clusters=None if resume else args.clusters, resume=resume,
                                 lr_drop_after=None if resume else args.lr_drop_after,
                                 mixed_precision=None if resume else args.mixed_precision,
                                 minutes=until - trained, progress=False, **({} if resume else settings(args)))
            trained = until
        g = run.generator()
        ev = g.evaluate(n=args.samples, data=args.data)
        row = {
            "recipe": recipe, "conditional": args.conditional, "clusters": run.config.model.clusters,
            "lr_drop_after": run.config.train.lr_drop_after or "",
            "seed": seed, "minutes": mark,
            "epochs": g.checkpoint.where, "fid": f"{ev.fid:.3f}", "confident": f"{ev.confident:.4f}",
            "coverage": f"{ev.coverage:.4f}",
            "conditional_accuracy": "" if ev.conditional_accuracy is None else f"{ev.conditional_accuracy:.4f}",
            "lowest_digit_accuracy": "" if ev.digit_accuracy is None else f"{min(ev.digit_accuracy):.4f}",
            "cpu": cpu_name(), "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
            "load1": f"{os.getloadavg()[0]:.2f}", "label": args.label,
            "dtype_policy": run.config.model.dtype_policy, "per_mark": args.per_mark,
            "images": images_seen(run), "settings": " ".join(args.set), "resumed": args.resumed,
            "scored_by": getattr(ev, "scored_by", None) or "",  # None before mnistgan shipped its MNIST scorer
        }
        append_row(table, row)
        print(", ".join(f"{k} {v}" for k, v in row.items() if k not in ("cpu",)), flush=True)


def plot(out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = read_rows(out / "time_to_quality.csv")
    fig, axes = plt.subplots(1, 3, figsize=(14, 5), dpi=100)
    columns = ("label", "recipe", "conditional", "clusters", "lr_drop_after", "cpu", "onednn_isa", "resumed")
    series = sorted({tuple(r[k] for k in columns) for r in rows})
    machines = {(cpu, isa) for *_, cpu, isa, _ in series}
    for name, recipe, conditional, clusters, drop, cpu, isa, resumed in series:
        mine = [r for r in rows if tuple(r[k] for k in columns) == (name, recipe, conditional, clusters, drop, cpu, isa,
                                                                    resumed)]
        minutes = sorted({float(r["minutes"]) for r in mine})
        label = name or recipe + (" conditional" if conditional == "True" else
                                  f", {clusters} clusters" if clusters != "0" else ", no clusters" if recipe == "fast"
                                  else "")
        label += f", lr drop after {int(drop):,}" if drop and not name else ""
        label += ", M/2 minutes resumed for M/2 more" if resumed == "True" else ""
        if len(machines) > 1:  # lines from different CPUs are not comparable in time: say which is which
            label += f" [{cpu.split('(')[0].strip()}{'' if isa == 'native' else ', ' + isa}]"
        seeds = max(sum(float(r["minutes"]) == m for r in mine) for m in minutes)
        label = f"{label} ({seeds} seed{'s' if seeds > 1 else ''})"
        for ax, key in zip(axes[::2], ("fid", "confident")):
            values = [[float(r[key]) for r in mine if float(r["minutes"]) == m] for m in minutes]
            line = ax.plot(minutes, [np.median(v) for v in values], marker="o", label=label)[0]
            ax.fill_between(minutes, [min(v) for v in values], [max(v) for v in values],
                            color=line.get_color(), alpha=0.2)
        # By images seen: the median over seeds of each mark's images and FID (rows that record them).
        seen = [[(int(r["images"]), float(r["fid"])) for r in mine if float(r["minutes"]) == m and r.get("images")]
                for m in minutes]
        seen = [v for v in seen if v]
        axes[1].plot([np.median([i for i, _ in v]) for v in seen], [np.median([f for _, f in v]) for v in seen],
                     marker="o", color=line.get_color())
    for ax in axes[:2]:
        ax.set_yscale("log")
        ax.set_ylabel("FID (10,000 samples; lower is better)")
    axes[2].set_ylabel("confident share")
    for ax, what in zip(axes, ("minutes of training", "training images seen (median over seeds)", "minutes of training")):
        ax.set_xlabel(what)
        ax.grid(alpha=0.3)
    # One legend for both plots, below them, where it hides no line: two entries a row.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    legend_rows = (len(series) + 1) // 2
    cpu = rows[0]["cpu"] if len(machines) == 1 else "CPUs as labelled"
    fig.suptitle(f"Quality against training time, all 60,000 images, 2 cores ({cpu}; median over seeds, "
                 "range shaded)", fontsize=9)
    fig.tight_layout(rect=(0, 0.02 + 0.045 * legend_rows, 1, 1))  # room for the legend
    path = out / "time_to_quality.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="mnist.npz (default: $MNISTGAN_DATA or Keras's cache)")
    parser.add_argument("--recipes", default="report,fast")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--marks", default="1,2,5,10", help="minutes of training at which to score")
    parser.add_argument("--conditional", action="store_true")
    parser.add_argument("--lr-drop-after", type=int, default=None,
                        help="train --lr-drop-after N for new runs (a line of its own; default: the recipe's)")
    parser.add_argument("--clusters", type=int, default=None,
                        help="train --clusters K (default: what the recipe does; 0: none)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--per-mark", action="store_true",
                        help="a run of its own for each mark (train --minutes MARK), not one run stopped at each")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                        help="train --mixed-precision / --no-mixed-precision (default: the recipe's choice)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for new runs (a field of TrainConfig or ModelConfig); repeatable")
    parser.add_argument("--resumed", action="store_true",
                        help="each mark M trained as M/2 minutes, then --resume --minutes M/2")
    parser.add_argument("--label", default="", help="names this line in the CSV and the plot")
    parser.add_argument("--import-csv", metavar="CSV", help="copy CSV's rows under --label, then stop")
    parser.add_argument("--out", default="ttq")
    parser.add_argument("--plot", metavar="DIR", help="only draw the plot from DIR's CSV")
    args = parser.parse_args()
    if args.plot:
        table = Path(args.plot) / "time_to_quality.csv"
        if not read_rows(table):
            parser.error(f"{table} holds no rows to plot")  # usage and this line, exit 2
        print(plot(Path(args.plot)))
        return
    if args.import_csv:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        import_rows(Path(args.out) / "time_to_quality.csv", Path(args.import_csv), args.label)
        return
    measure(args)
    print(plot(Path(args.out)))


if __name__ == "__main__":
    main()
