"""When training stops before its last epoch: a signal (Ctrl-C, SIGTERM) or the time budget,
and the clock budgets are measured in. A budget counts training, not setting it up: its clock
starts once the process's compiled steps are built, after the first chunk of steps (under lazy
R1, the second where the first held no penalised step; never later than the second, so an
interval above twenty steps may still build the penalised step inside it): seconds that every resumed
process would otherwise spend again from its minutes. The epoch's short last batch, where there
is one, builds its own step at the end of the first epoch, inside the budget."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mnistgan.epochlog import Stop, StopReason


def clock() -> float:
    """The time a budget is measured in (seconds; tests put a clock of their own here)."""
    return time.monotonic()


class Stops:
    """Whether training should stop now: a signal, or the time budget spent.

    Multi-worker runs stop together and for the same reason: a stop on any worker stops all of
    them at the same step (one that stopped alone would leave the others waiting in a collective
    forever), and every worker takes the stop that comes first in rank: a signal (the highest
    number, if several) before a spent budget. So all of them exit with one code.
    """

    def __init__(self, signalled: Callable[[], int | None], minutes: float | None, votes, dist,
                 now: Callable[[], float] | None = None) -> None:
        self.signalled, self.votes, self.dist, self.minutes = signalled, votes, dist, minutes
        self.clock = now or clock  # the module's clock as it is now: a test may have replaced it
        self.deadline: float | None = None  # when the budget is spent, once its clock runs

    def start_clock(self) -> None:
        """Start the budget's clock, if there is a budget and its clock is not running yet: called
        after the chunk that leaves the compiled steps built."""
        if self.minutes is not None and self.deadline is None:
            self.deadline = self.clock() + 60 * self.minutes

    def check(self) -> Stop | None:
        signum = self.signalled()
        time_up = self.deadline is not None and self.clock() >= self.deadline
        # A vote (distribute.Votes.stop): a signal's number, 0 for a spent budget, None to go on.
        local = signum if signum is not None else (0 if time_up else None)
        agreed = local if self.dist.workers == 1 else self.votes.stop(local)
        if agreed is None:
            return None
        if agreed == 0:
            return Stop(StopReason.TIME_UP)
        return Stop(StopReason.SIGNAL if agreed == signum else StopReason.PEER, agreed)


@contextmanager
def stop_requests() -> Iterator[Callable[[], int | None]]:
    """Turn the first Ctrl-C/SIGTERM into a request the loop polls; a second one interrupts now."""
    received: list[int] = []
    previous = {}

    def handler(signum, frame):  # noqa: ARG001
        received.append(signum)
        for sig, old in previous.items():  # a second signal acts immediately
            signal.signal(sig, old)

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        previous.clear()
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
