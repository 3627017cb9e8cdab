"""The CLI's side of ``accessd.progress``: a bar on a terminal, plain lines elsewhere.

``with progress_for("resync", "templates") as progress: service(..., progress=progress)``.
On a terminal (stderr is a tty) it draws rich's bar with the count, the rate and the time left;
in a pipe, a cron mail or the journal it prints ``PlainProgress`` lines on stderr (stdout keeps
the command's result, so ``accessd ... | tail -1`` still reads it). Progress never goes to
stdout. rich is imported only when a bar is drawn.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from accessd.progress import PlainProgress, Progress


def on_terminal(stream: TextIO) -> bool:
    """A person watches: a tty, and no ``TERM=dumb``."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except ValueError:  # closed
        return False


@contextmanager
def progress_for(what: str, unit: str, *, stream: TextIO | None = None) -> Iterator[Progress]:
    """A ``Progress`` for one command's long work, shown on ``stream`` (default stderr)."""
    out = stream or sys.stderr
    if not on_terminal(out):
        plain = PlainProgress(what, unit, stream=out)
        try:
            yield plain
        finally:
            plain.close()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    console = Console(file=out)
    bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn(unit), TaskProgressColumn(), TextColumn("ETA"),
                       TimeRemainingColumn(), console=console, transient=False,
                       refresh_per_second=8)
    task = bar.add_task(what, total=None)

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update
