"""How long work tells whoever watches it how far it got: one tiny callback.

A service that may run for more than a couple of seconds (a resync of the sensor's library, a
backup, a restore, an export, a purge, a key rotation) takes ``progress: Progress`` and calls
it with how much is done and, when it knows, the total: ``progress(120, 1000)``. It never
formats anything and never imports a terminal library: the CLI supplies a bar on a terminal
(``accessd.cli.progress_bar``) or ``PlainProgress`` lines in a pipe or the journal; the daemon
writes counts on a command's row, where the CLI and the panel follow them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO


class Progress(Protocol):
    """Called by long work: ``done`` units so far, of ``total`` (``None``: not known yet).

    Calls may come as often as every row: an implementation keeps its own pace (it prints or
    writes at most every so often) and must be cheap. ``total`` may grow as the work discovers
    more of it (a purge that starts on another customer).
    """

    def __call__(self, done: int, total: int | None) -> None: ...


def no_progress(done: int, total: int | None) -> None:
    """The default: nobody watches."""


class Tally:
    """Adds up the parts of one piece of work for its ``Progress``: ``add(n)`` after each batch,
    ``expect(n)`` when more work is found."""

    def __init__(self, progress: Progress, total: int | None = None) -> None:
        self.progress = progress
        self.done = 0
        self.total = total

    def expect(self, more: int) -> None:
        self.total = (self.total or 0) + more
        self.progress(self.done, self.total)

    def add(self, n: int = 1) -> None:
        self.done += n
        self.progress(self.done, self.total)


def duration(seconds: float) -> str:
    """``100`` -> ``1m40s``; ``3725`` -> ``1h02m``; ``7`` -> ``7s``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def time_left(done: int, total: int | None, elapsed: float) -> float | None:
    """Seconds left at the pace so far; ``None`` while nothing is done or the total unknown."""
    if not total or done <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


def describe(what: str, unit: str, done: int, total: int | None, elapsed: float) -> str:
    """``resync: 120/1000 templates, 1m40s left`` (the plain line and the command row's text)."""
    if total is None:
        return f"{what}: {done} {unit}"
    left = time_left(done, total, elapsed)
    tail = f", {duration(left)} left" if left is not None and done < total else ""
    return f"{what}: {done}/{total} {unit}{tail}"


class PlainProgress:
    """Progress as plain lines, for a pipe or the journal: one line at the start, then at most
    one every ``every_percent`` of the total or every ``every_seconds`` (whichever comes
    first), and one at the end (``close``)."""

    def __init__(self, what: str, unit: str, *, stream: TextIO | None = None,
                 every_seconds: float = 5.0, every_percent: float = 10.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.what, self.unit = what, unit
        self.stream = stream
        self.every_seconds, self.every_percent = every_seconds, every_percent
        self.monotonic = monotonic
        self.started = monotonic()
        self.done, self.total = 0, None  # type: tuple[int, int | None]
        self._printed_at: float | None = None
        self._printed_percent = -1.0
        self._last_line = ""

    def __call__(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        now = self.monotonic()
        percent = 100.0 * done / total if total else 0.0
        if (self._printed_at is None or now - self._printed_at >= self.every_seconds
                or (total and percent - self._printed_percent >= self.every_percent)):
            self._print(now)
            self._printed_percent = percent

    def close(self) -> None:
        """The last line, with the final count (unless it was just printed)."""
        if self._printed_at is not None or self.done:
            self._print(self.monotonic())

    def _print(self, now: float) -> None:
        line = describe(self.what, self.unit, self.done, self.total, now - self.started)
        self._printed_at = now
        if line == self._last_line:
            return
        self._last_line = line
        print(line, file=self.stream or sys.stderr, flush=True)
