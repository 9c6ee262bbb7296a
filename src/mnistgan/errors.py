"""Errors the core raises for problems with the user's input or environment.

Messages speak of arguments, not of command-line options: an argument is written ``arg("name")``
in the message, and shown as ``name`` from Python and as the option (``--name``) by the CLI,
which calls :meth:`MnistganError.render` with its own naming. The mark is a NUL on each side,
which no path, command-line value or file name can hold, so a user's own text in a message (a
path with ``{seeds}`` in it) is shown as it is. The CLI turns each error into one line on
stderr and the exit code it carries; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ARGUMENT = re.compile("\0([a-z][a-z0-9_]*)\0")


def arg(name: str) -> str:
    """How a message names argument ``name`` (see the module's docstring): ``arg("seed")``."""
    return f"\0{name}\0"


def option(argument: str) -> str:
    """An argument as the command line writes it, where no command is at hand to ask: --name."""
    return "--" + argument.replace("_", "-")


def _rendered(template: str, name: Callable[[str], str]) -> str:
    return _ARGUMENT.sub(lambda m: name(m.group(1)), template)


class Note(str):
    """A note for the user (a folder read with files skipped, say) that names arguments as
    messages do: as a string it reads them plainly (``invert``); :meth:`render` names them as
    a front end writes them (the CLI: ``--invert``)."""

    def __new__(cls, template: str) -> Note:
        note = super().__new__(cls, _rendered(template, str))
        note.template = template
        return note

    def render(self, name: Callable[[str], str] = str) -> str:
        return _rendered(self.template, name)


class MnistganError(Exception):
    """A failure the user can act on; the message is shown as it is, on one line."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.template = message
        if exit_code is not None:
            self.exit_code = exit_code

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message, each argument written as ``name(argument)``."""
        return _rendered(self.template, name)

    def __str__(self) -> str:
        return self.render()


class UsageError(MnistganError):
    """The arguments ask for something that cannot be done (the CLI's convention: exit 2)."""

    exit_code = 2


class DataError(MnistganError):
    """MNIST could not be found, read or validated."""


class RunError(MnistganError):
    """A run folder is missing, unreadable, locked by another process, or would be overwritten."""


class CheckpointError(MnistganError):
    """A checkpoint is missing, incomplete or does not match the run."""


class TrainingDiverged(MnistganError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(MnistganError):
    """Ctrl-C or SIGTERM: a checkpoint was saved and the run can be resumed."""

    exit_code = 130
