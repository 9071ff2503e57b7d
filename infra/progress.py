"""Progress of long operations, reported by the code that does the work and shown
by whoever runs it: a ``rich`` bar on a terminal (the CLI), nothing in the API or
in tests.

Services take a ``Progress`` and call ``stage`` when a step begins (with its
total, when it is known) and ``advance`` as items are done. ``SILENT`` is the
default: work never depends on anyone watching.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress


class Progress(Protocol):
    def stage(self, description: str, total: int | None = None) -> None:
        """A new step begins; the previous one is done."""

    def advance(self, amount: int = 1) -> None:
        """``amount`` more items of the current step are done."""

    def update(self, completed: int, total: int | None = None) -> None:
        """The current step has done ``completed`` items (of ``total``, if now known)."""


class _Silent:
    def stage(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def update(self, completed: int, total: int | None = None) -> None:
        pass


SILENT: Progress = _Silent()


class Recorded:
    """A Progress that remembers each stage, its total and how far it got: for a log
    line after the work, and for tests that check what a service reports."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, int | None]] = []
        self.done: dict[str, int] = {}

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.stages]

    def stage(self, description: str, total: int | None = None) -> None:
        self.stages.append((description, total))
        self.done[description] = 0

    def advance(self, amount: int = 1) -> None:
        if self.stages:
            self.done[self.stages[-1][0]] += amount

    def update(self, completed: int, total: int | None = None) -> None:
        if self.stages:
            name, known = self.stages[-1]
            self.stages[-1] = (name, total if total is not None else known)
            self.done[name] = completed


class _Bar:
    """Each stage a line of its own: finished stages stay visible with their time."""

    def __init__(self, progress: RichProgress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def _finish(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            if task.total is None:
                self._progress.update(self._task, total=max(task.completed, 1))
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)

    def stage(self, description: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def update(self, completed: int, total: int | None = None) -> None:
        if self._task is not None:
            if total is not None:
                self._progress.update(self._task, total=total)
            self._progress.update(self._task, completed=completed)


def rich_bars(console: Console | None = None) -> RichProgress:
    """The platform's look for progress bars (description, bar, n/total, time), on
    stderr unless told otherwise; for callers that draw several bars at once."""
    return RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )


@contextmanager
def progress_bar(console: Console | None = None) -> Iterator[Progress]:
    """A ``Progress`` drawn with rich on stderr (plain lines when not a terminal).
    The last stage is shown complete only when the block succeeds: a failed command
    leaves its bar where the work stopped."""
    with rich_bars(console) as progress:
        bar = _Bar(progress)
        yield bar
        bar._finish()
