"""Errors the core raises for problems with the user's input or environment.

The CLI turns each into one line on stderr and the exit code it carries; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class MnistganError(Exception):
    """A failure the user can act on; the message is shown as it is, on one line."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(MnistganError):
    """The command line asks for something that cannot be done (Typer's convention: exit 2)."""

    exit_code = 2


class DataError(MnistganError):
    """MNIST could not be found, read or validated."""


class RunError(MnistganError):
    """A run folder is missing, unreadable, or would be overwritten."""


class CheckpointError(MnistganError):
    """A checkpoint is missing, incomplete or does not match the run."""


class TrainingDiverged(MnistganError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(MnistganError):
    """Ctrl-C or SIGTERM: a checkpoint was saved and the run can be resumed."""

    exit_code = 130
