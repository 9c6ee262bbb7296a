"""Training speed: mnistgan against the plain TF2 port of the report, side by side in one run.

Each trial is a whole process, timed from start to exit (TensorFlow import, graph building and
training included), as a user experiences `mnistgan train --subset N --epochs 1`. Trials of the
two alternate (plain, mnistgan, plain, mnistgan, ...) so that drifts in machine load hit both;
the median of each is reported, with the ratio and each process's peak resident memory.

    python benchmarks/train_speed.py --data ../shared/data/mnist.npz            # CPU
    python benchmarks/train_speed.py --data mnist.npz --gpu --subset 60000      # on a GPU machine

Prints one line per trial, then a summary; `--json FILE` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``; return wall seconds, peak RSS in MiB (of that process alone) and its stderr+stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    _, status, rusage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    output = proc.stdout.read()
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")
    return seconds, rusage.ru_maxrss / 1024, output


def in_loop_rate(output: str) -> float | None:
    """images/s of the training loop alone, as the process itself reports it."""
    m = re.findall(r"([\d.]+) images/s", output)
    return float(m[-1]) if m else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="mnist.npz")
    p.add_argument("--subset", type=int, default=15360, help="images per epoch (default: 60 steps of 256)")
    p.add_argument("--trials", type=int, default=3, help="runs of each side")
    p.add_argument("--gpu", action="store_true", help="both sides must run on a GPU")
    p.add_argument("--extra", default="", help="extra mnistgan train options, e.g. '--mixed-precision'")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()

    mnistgan = shutil.which("mnistgan") or str(Path(sys.executable).with_name("mnistgan"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    gpu = ["--gpu"] if args.gpu else []
    plain_cmd = [sys.executable, str(HERE / "plain_port.py"), "--data", args.data, "--subset", str(args.subset),
                 "--epochs", "1", *gpu]
    results: dict[str, list[dict[str, float]]] = {"plain": [], "mnistgan": []}
    with tempfile.TemporaryDirectory() as tmp:
        for trial in range(args.trials):
            for side in ("plain", "mnistgan"):
                if side == "plain":
                    cmd = plain_cmd
                else:
                    cmd = [mnistgan, "train", "--data", args.data, "--subset", str(args.subset), "--epochs", "1",
                           "--out", f"{tmp}/run{trial}", *gpu, *args.extra.split()]
                seconds, rss, output = run_timed(cmd, env)
                rec = {"seconds": seconds, "images_per_second": args.subset / seconds, "peak_rss_mib": rss,
                       "loop_images_per_second": in_loop_rate(output) or float("nan")}
                results[side].append(rec)
                print(f"trial {trial + 1} {side:8s}: {seconds:6.1f} s wall, {rec['images_per_second']:6.1f} images/s "
                      f"(loop alone {rec['loop_images_per_second']:.1f}), peak RSS {rss:.0f} MiB", flush=True)

    summary = {}
    for side, recs in results.items():
        summary[side] = {k: statistics.median(r[k] for r in recs) for k in recs[0]}
    ratio = summary["mnistgan"]["images_per_second"] / summary["plain"]["images_per_second"]
    loop_ratio = summary["mnistgan"]["loop_images_per_second"] / summary["plain"]["loop_images_per_second"]
    print(f"\nmedian of {args.trials}: plain port {summary['plain']['images_per_second']:.1f} images/s, "
          f"mnistgan {summary['mnistgan']['images_per_second']:.1f} images/s (whole process, {args.subset} images)")
    print(f"speed-up: {ratio:.2f}x whole process, {loop_ratio:.2f}x training loop alone")
    print(f"peak RSS: plain {summary['plain']['peak_rss_mib']:.0f} MiB, mnistgan {summary['mnistgan']['peak_rss_mib']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "trials": results,
                                         "median": summary, "ratio": ratio, "loop_ratio": loop_ratio}, indent=2))


if __name__ == "__main__":
    main()
