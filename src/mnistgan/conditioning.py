"""How a run's networks are conditioned, decided once and read everywhere.

A run's generator and discriminator see nothing beside the image and noise, or a label: one of
the data's classes (a conditional run: ``--conditional``), or one of K clusters that k-means
found in the training images (a self-conditioned run: ``--clusters``). :class:`Conditioning`
says which, with how many and what they are called; ``ModelConfig.conditioning`` makes it from
the run's settings. Every count comes from the data or the clusters: there is no default.

Classes are asked for by number or by name (``--class cat``): a string of ASCII digits is
always an index, anything else a name, matched exactly (case, spaces and Unicode as the data
has them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mnistgan.errors import UsageError, arg

SHOWN = 20  # classes a message lists before it gives the count
_INDEX = re.compile(r"[0-9]{1,9}")  # ASCII digits only: '²' and '٣' are names, never numbers


@dataclass(frozen=True)
class Conditioning:
    """What the networks' label input is.

    ``kind``: "none" (no label input), "classes" (the data's classes; ``names`` from its folders
    or class-names file, empty when numbered) or "clusters" (k-means; ``sizes``: training images
    per cluster). ``count``: the values the label takes, 0 for none.
    """

    kind: Literal["none", "classes", "clusters"] = "none"
    count: int = 0
    names: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()

    @property
    def classes(self) -> bool:
        """The generator draws the class it is asked for (a conditional run)."""
        return self.kind == "classes"

    @property
    def clusters(self) -> bool:
        """The generator picks a cluster from its noise (a self-conditioned run)."""
        return self.kind == "clusters"

    @property
    def labelled(self) -> bool:
        """The networks have a label input (classes or clusters)."""
        return self.kind != "none"

    @property
    def noun(self) -> str:
        return "cluster" if self.clusters else "class"

    def name(self, label: int) -> str:
        """Label ``label`` as people read it: the class's name, else its number."""
        return self.names[label] if label < len(self.names) else str(label)

    def choices(self) -> list[str]:
        """Every label by name (numbers where there are no names), in label order."""
        return [self.name(i) for i in range(self.count)]

    def listing(self) -> str:
        """The labels for a message: '0 cat, 1 dog, 2 bird', or '0 to 61' without names; the
        first 20 and the count where there are more."""
        if not self.names:
            return f"0 to {self.count - 1}"
        shown = ", ".join(f"{i} {name}" for i, name in enumerate(self.names[:SHOWN]))
        return shown if self.count <= SHOWN else f"{shown}, ... ({self.count} in all)"

    @property
    def plural(self) -> str:
        return "clusters" if self.clusters else "classes"

    def label(self, value: int | str, argument: str) -> int:
        """The label that ``value`` asks for: a number (an int, or a string of ASCII digits) is
        the index; any other string the name. A UsageError naming ``argument`` and listing the
        run's labels otherwise."""
        index = None
        if isinstance(value, str):
            if _INDEX.fullmatch(value):
                index = int(value)
            elif self.names.count(value) == 1:
                return self.names.index(value)
            elif value in self.names:  # names that differ only in bytes shown as U+FFFD
                same = ", ".join(str(i) for i, name in enumerate(self.names) if name == value)
                raise UsageError(f"{arg(argument)} {value!r} names classes {same}: give its number")
        elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            index = int(value)
        if index is not None and 0 <= index < self.count:
            return index
        raise UsageError(f"{arg(argument)} must be one of the run's {self.count} {self.plural}: "
                         f"{self.listing()}; not {value!r}")

    def spelled(self, label: int) -> str:
        """How a command line asks for ``label`` so that it reads back as the same label: its
        name, or its number where the name would read as another thing (digits, which are an
        index; a comma, which separates a list, or spaces around it, which a list drops; 'all';
        a name two classes share)."""
        name = self.name(label)
        plain = name not in ("all", "") and "," not in name and name == name.strip() \
            and not _INDEX.fullmatch(name) and self.names.count(name) == 1
        return name if plain else str(label)

    def picked(self, value: int | str, argument: str) -> int:
        """The label a picker's value asks for: a picker offers the names (:meth:`choices`), so a
        name wins over a number here ('10' is the class named 10); see :meth:`label`."""
        if isinstance(value, str) and self.names.count(value) == 1:
            return self.names.index(value)
        return self.label(value, argument)

    def labels(self, values: str | Iterable[int | str], argument: str) -> list[int]:
        """Several labels: a comma-separated string ('cat,bird', '3,8') or a list; 'all' is every one."""
        if isinstance(values, str):
            if values.strip() == "all":
                return list(range(self.count))
            values = [v.strip() for v in values.split(",") if v.strip()]
        found = [self.label(v, argument) for v in values]
        if not found:
            raise UsageError(f"{arg(argument)} names no {self.noun}")
        return found
