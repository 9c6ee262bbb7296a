"""Start-up cost: `mnistgan --help` and each `mnistgan CMD --help` against `python -c "import tensorflow"`.

Commands that need no TensorFlow must not import it. Each command is run --repeat times (whole
process, wall clock); medians are printed with their ratio to the TensorFlow import.

    python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    mnistgan = shutil.which("mnistgan") or str(Path(sys.executable).with_name("mnistgan"))
    base = median_seconds([sys.executable, "-c", "import tensorflow"], args.repeat)
    print(f"python -c 'import tensorflow': {base:.2f} s (median of {args.repeat})")
    for cmd in ([], ["preview-dataset"], ["train"], ["sample"], ["animate"]):
        s = median_seconds([mnistgan, *cmd, "--help"], args.repeat)
        print(f"mnistgan {' '.join(cmd + ['--help']):24s} {s:.2f} s  ({s / base:.0%} of the import)")


if __name__ == "__main__":
    main()
