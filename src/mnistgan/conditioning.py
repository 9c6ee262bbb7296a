"""How a run's networks are conditioned, decided once and read everywhere.

A run's generator and discriminator see nothing beside the image and noise, or a label: one of
the data's classes (a conditional run: ``--conditional``), or one of K clusters that k-means
found in the training images (a self-conditioned run: ``--clusters``). :class:`Conditioning`
says which, with how many and what they are called; ``ModelConfig.conditioning`` makes it from
the run's settings. Every count comes from the data or the clusters: there is no default.

Classes are asked for by number or by name (``--class cat``), by one rule everywhere (the
command line, the API, the explorer's pickers): a value that is exactly one class's name is
that class, whatever else it could read as; any other string of ASCII digits is an index. Names
match in Unicode's composed form (NFC: a folder named on macOS matches a typed "zéro"), as
given first, then without the spaces around them. In a list, a name with commas in it is
matched whole (see :meth:`Conditioning.labels`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
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

    @functools.cached_property
    def _keys(self) -> dict[str, list[int]]:
        """Each name's composed form (NFC), with the classes that have it."""
        keys: dict[str, list[int]] = {}
        for i, name in enumerate(self.names):
            keys.setdefault(_nfc(name), []).append(i)
        return keys

    def _named(self, value: str) -> list[int]:
        """The classes whose name is ``value`` (NFC), as given or else without its surrounding spaces."""
        return self._keys.get(_nfc(value)) or self._keys.get(_nfc(value.strip())) or []

    def names_class(self, value: str) -> bool:
        """``value`` is some class's name, by the module's rule (which then picks that class)."""
        return bool(self._named(value))

    def label(self, value: int | str, argument: str) -> int:
        """The label that ``value`` asks for, by the module's rule: one class's name (an exact
        match wins over reading it as a number: folders 1/, 3/, 7/ make '7' the third class),
        else a number (an int, or a string of ASCII digits) as the index. A UsageError naming
        ``argument`` and listing the run's labels otherwise."""
        index = None
        if isinstance(value, str):
            named = self._named(value)
            if len(named) == 1:
                return named[0]
            if named:  # names equal once composed, or differing only in bytes shown as U+FFFD
                same = ", ".join(map(str, named))
                raise UsageError(f"{arg(argument)} {value!r} names classes {same}: give its number")
            if _INDEX.fullmatch(value.strip()):
                index = int(value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            index = int(value)
        if index is not None and 0 <= index < self.count:
            return index
        shown = int(value) if isinstance(value, np.integer) else value  # 12, not np.int64(12)
        raise UsageError(f"{arg(argument)} must be one of the run's {self.count} {self.plural}: "
                         f"{self.listing()}; not {shown!r}")

    def spelled(self, label: int) -> str:
        """How a command line asks for ``label`` so that it reads back as the same label: its
        name, or its number where the name would not (two classes with one name)."""
        name = self.name(label)
        return name if self._named(name) == [label] else str(label)

    def spelled_list(self, labels: Iterable[int]) -> str:
        """How ``--classes`` asks for ``labels`` so that they read back the same: by name (see
        :meth:`spelled`), or by number where names with commas would run together."""
        labels = list(labels)

        def mixed(label: int) -> str:  # a name with a comma by number, the others by name
            return str(label) if "," in self.name(label) else self.spelled(label)

        for text in (",".join(map(self.spelled, labels)), ",".join(map(mixed, labels)), ",".join(map(str, labels))):
            try:
                if self.labels(text, "classes") == labels:
                    return text
            except UsageError:
                pass
        return ",".join(map(str, labels))

    def labels(self, values: str | Iterable[int | str], argument: str) -> list[int]:
        """Several labels: a list, or a comma-separated string ('cat,bird', '3,8'), each by the
        rule of :meth:`label`; 'all' is every one (unless a class is named so). In a string, a
        name with commas is matched whole ('a,b' where a class has that name), the longest first."""
        if isinstance(values, str):
            if values.strip() == "all" and not self.names_class(values):
                return list(range(self.count))
            longest = max((name.count(",") for name in self.names), default=0)  # commas a name holds
            values = _split(values, self.names_class, longest)
        found = [self.label(v, argument) for v in values]
        if not found:
            raise UsageError(f"{arg(argument)} names no {self.noun}")
        return found


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _split(text: str, is_name, commas: int) -> list[str]:
    """A comma-separated list's items, blank ones dropped (unless a class has that name); where
    a run of items joined by their commas is a name, that run is one item (the longest such run;
    ``commas``: the most a name holds)."""
    parts, items, i = text.split(","), [], 0
    while i < len(parts):
        j = next((j for j in range(min(len(parts), i + 1 + commas), i + 1, -1) if is_name(",".join(parts[i:j]))), i + 1)
        items.append(",".join(parts[i:j]))
        i = j
    return [item for item in items if item.strip() or is_name(item)]


def either(value, old, name: str, old_name: str):
    """An argument given by its name or by the name it had before (``digit`` for ``class_``), not both."""
    if old is None:
        return value
    if value is not None:
        raise UsageError(f"give {arg(name)} or {arg(old_name)}, not both")
    return old
