"""The grids ``mnistgan sample`` saves: which images a request asks of a generator, and how they
are laid out (a row per class or cluster, or as square as the images allow)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mnistgan.errors import UsageError, arg
from mnistgan.images import Sheet

if TYPE_CHECKING:
    from mnistgan.sampling import Generator


def sample_sheet(generator: Generator, n: int = 16, seed: int = 0, class_: int | str | None = None,
                 truncation: float = 1.0, cluster: int | str | None = None, all_classes: bool = False,
                 all_clusters: bool = False, noise: np.ndarray | None = None, cols: int | None = None,
                 classes: str | list[int | str] | None = None) -> Sheet:
    """What ``mnistgan sample`` draws from ``generator``, laid out as it saves it: ``classes`` (a
    list, by name or number, or 'all') or ``all_classes`` (every class, whatever the names), or
    ``all_clusters``, a row of ``n`` per class or cluster; otherwise ``Generator.sample``,
    ``cols`` images a row (or as square as the images allow). Combinations that ask for two
    layouts at once are refused, naming both arguments."""
    if all_classes and classes is not None and classes != "all":
        raise UsageError(f"give {arg('all_classes')} or {arg('classes')}, not both")
    rows = all_classes or classes is not None or all_clusters
    if cols is not None and rows:
        raise UsageError(f"{arg('cols')} does not apply to a grid with a row per class or cluster")
    if cols is not None and cols < 1:
        raise UsageError(f"{arg('cols')} must be at least 1, not {cols}")
    if (classes is not None or all_classes) and class_ is not None:
        raise UsageError(f"give one {arg('class_')} or a row per class ({arg('classes')}), not both")
    if all_clusters and cluster is not None:
        raise UsageError(f"give one {arg('cluster')} or {arg('all_clusters')}, not both")
    if noise is not None and rows:
        raise UsageError(f"{arg('noise')} cannot be combined with a grid of every class or cluster")
    if all_classes:
        generator.require_conditional(arg("all_classes"))
    if classes is not None or all_classes:
        labels = list(range(generator.classes)) if all_classes else generator.labels(classes, "classes")
        return Sheet(generator.class_rows(generator.noise(n, seed, truncation), labels), len(labels), n)
    if all_clusters:
        return Sheet(generator.sample_all_clusters(n, seed, truncation), generator.clusters, n)
    return Sheet(generator.sample(n, seed, class_, truncation, cluster, noise), None, cols)
