"""The live progress display of a run: elapsed time, phase, ops ok/fail/info, faults in force.

On a terminal it is a `rich` live line; in a log (CI) it prints one plain line every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from rich.console import Console
from rich.live import Live
from rich.text import Text

from splitbrain.workloads.interpreter import Tally


def status_line(tally: Tally, faults: list[str]) -> Text:
    c = tally.counts
    line = Text()
    line.append(f"{tally.elapsed:6.1f}s ", style="bold")
    line.append(f"{tally.phase:<12} ")
    line.append(f"ok {c['ok']:>6} ", style="green")
    line.append(f"fail {c['fail']:>5} ", style="yellow")
    line.append(f"info {c['info']:>5} ", style="red")
    line.append("faults: " + (", ".join(faults) if faults else "none"), style="magenta")
    return line


async def show_progress(
    tally: Tally,
    in_force: Callable[[], list[str]],
    console: Console,
    *,
    interval: float = 0.25,
    log_interval: float = 5.0,
) -> None:
    """Refresh until cancelled."""
    if console.is_terminal:
        with Live(status_line(tally, in_force()), console=console, transient=False,
                  auto_refresh=False) as live:
            with contextlib.suppress(asyncio.CancelledError):
                while True:
                    live.update(status_line(tally, in_force()), refresh=True)
                    await asyncio.sleep(interval)
            live.update(status_line(tally, in_force()), refresh=True)
        return
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(log_interval)
            console.print(status_line(tally, in_force()))
