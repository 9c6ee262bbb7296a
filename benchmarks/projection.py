"""How well `mnistgan project` finds MNIST test digits in a generator's latent space.

Projects the first N MNIST test images (default 100) with the library's defaults and reports,
for each generator: the median and quartiles of the RMS pixel difference between target and
projection (grey levels, 0-255), and the share of projections the evaluation classifier reads
as the same digit as the target (and, for contrast, the share of targets it reads correctly).

    python benchmarks/projection.py --run out/ --data mnist.npz -n 100 [--steps 300 --starts 8]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--ckpt", default="latest")
    p.add_argument("--data", default=None)
    p.add_argument("-n", type=int, default=100)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--starts", type=int, default=8)
    args = p.parse_args()

    import mnistgan
    from mnistgan.classifier import load_or_train
    from mnistgan.projection import project

    mnist = mnistgan.load_mnist(args.data)
    classifier = load_or_train(lambda: mnist)
    generator = mnistgan.open_run(args.run).generator(args.ckpt)
    targets, labels = mnist.x_test[: args.n], mnist.y_test[: args.n]
    t0 = time.perf_counter()
    found = [project(generator, t, steps=args.steps, starts=args.starts) for t in targets]
    seconds = time.perf_counter() - t0
    errors = np.array([f.error for f in found])

    def read(images: np.ndarray) -> np.ndarray:
        return np.argmax(classifier.features_and_probs(images)[1], axis=1)

    as_target = read(np.stack([f.image for f in found])) == labels
    print(json.dumps({
        "generator": generator.describe(), "n": args.n, "steps": args.steps, "starts": args.starts,
        "rms_median": round(float(np.median(errors)), 1),
        "rms_quartiles": [round(float(q), 1) for q in np.percentile(errors, [25, 75])],
        "same_digit": round(float(as_target.mean()), 3),
        "targets_read_correctly": round(float((read(targets) == labels).mean()), 3),
        "seconds_per_image": round(seconds / args.n, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
