"""What a set of tiny --deterministic runs produce, as hashes: a refactoring must not change a byte.

Trains small runs with the installed `mnistgan` command (unconditional with the report's recipe,
conditional with R1 and --eval-every, self-conditioned with the fast recipe), then draws samples,
walks and a projection from each, and prints one line per output: its name and the sha256 of its content.
Checkpoints are hashed by their variables' values (name, dtype, shape, bytes), metrics.csv by
its loss columns (the others are timings). Run it before and after a change and diff the two:

    python benchmarks/fingerprint.py --data mnist.npz > before.txt
    ... change the code ...
    python benchmarks/fingerprint.py --data mnist.npz > after.txt && diff before.txt after.txt

About two minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SMALL = ["--subset", "600", "--epochs", "2", "--batch-size", "64", "--deterministic", "--keep", "3"]
RUNS = {
    "report": [],
    "conditional-r1": ["--conditional", "--r1", "0.2", "--eval-every", "1", "--eval-samples", "200"],
    "fast-clusters": ["--recipe", "fast", "--clusters", "5", "--batch-size", "64"],
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def checkpoint_hash(prefix: str) -> str:
    import numpy as np
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    digest = hashlib.sha256()
    for name in sorted(reader.get_variable_to_shape_map()):
        if name.startswith("config/"):  # the run's config.json: hashed with the run's files
            continue
        value = np.asarray(reader.get_tensor(name))
        digest.update(f"{name}|{value.dtype}|{value.shape}|".encode())
        digest.update(value.tobytes() if value.dtype != object else repr(value.tolist()).encode())
    return digest.hexdigest()[:16]


def losses(path: Path) -> str:
    with open(path, newline="") as fh:
        rows = [(r["epoch"], r["generator_loss"], r["discriminator_loss"]) for r in csv.DictReader(fh)]
    return sha(repr(rows).encode())


def mnistgan(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "mnistgan.cli", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"mnistgan {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")


def fingerprint(data: Path, work: Path) -> list[str]:
    lines = []
    for name, extra in RUNS.items():
        run = work / name
        mnistgan("train", "--data", str(data), "--out", str(run), *SMALL, *extra)
        lines.append(f"{name} metrics {losses(run / 'metrics.csv')}")
        if (run / "evaluation.csv").exists():
            lines.append(f"{name} evaluation.csv {sha((run / 'evaluation.csv').read_bytes())}")
        for png in sorted((run / "images").glob("*.png")):
            lines.append(f"{name} {png.name} {sha(png.read_bytes())}")
        for index in sorted((run / "checkpoints").glob("*.index")):
            lines.append(f"{name} {index.stem} {checkpoint_hash(str(index.with_suffix('')))}")
        grid = ["--digits", "all", "-n", "4"] if "conditional" in name else (
            ["--cluster", "all", "-n", "4"] if "clusters" in name else ["-n", "36"])
        outputs = {
            "samples.npy": ["sample", "-n", "40", "--seed", "3", "--out"],
            "trained.npy": ["sample", "-n", "40", "--seed", "3", "--no-ema", "--truncation", "0.7", "--out"],
            "grid.png": ["sample", *grid, "--seed", "5", "--out"],
            "walk.gif": ["interpolate", "--seeds", "1,2", "--frames", "3", "--out"],
            **({"digit-walk.gif": ["interpolate", "--digits", "3,8", "--seeds", "1", "--frames", "3", "--out"]}
               if "conditional" in name else {}),
            "projection.png": ["project", "--test-index", "0", "--data", str(data), "--steps", "20", "--starts",
                               "2", "--out"],
        }
        for out, args in outputs.items():
            mnistgan(*args, str(work / f"{name}-{out}"), "--run", str(run))
            lines.append(f"{name} {out} {sha((work / f'{name}-{out}').read_bytes())}")
        noise = work / f"{name}-projection.npy"
        lines.append(f"{name} projection.npy {sha(noise.read_bytes())}")
        mnistgan("sample", "--noise", str(noise), "--out", str(work / f"{name}-again.npy"), "--run", str(run))
        lines.append(f"{name} from-noise.npy {sha((work / f'{name}-again.npy').read_bytes())}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="mnist.npz")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="mnistgan-fingerprint-") as work:
        print("\n".join(fingerprint(args.data.resolve(), Path(work))))


if __name__ == "__main__":
    main()
