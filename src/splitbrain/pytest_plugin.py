"""The splitbrain pytest plugin: chaos runs inside a test suite (registered as `pytest11`).

    def test_survives_partitions(splitbrain_run):
        splitbrain_run(nemesis="partition,kill", time_limit=10)

The `splitbrain_run` fixture runs one `splitbrain run` (or `sim`, with `mode="sim"`) — a real
cluster of the target under the fault mix — in the test's temporary directory, the same way a
campaign runs each of its runs, and fails the test with the verdict, the explanation and the
path of the report when the verdict is not the one expected (`expect="valid"` by default;
`expect="invalid"` for a test that must catch a bug). It returns the RunOutcome.

Rules: importing this module costs nothing (it is loaded into every pytest session of an
environment where splitbrain is installed); the run is a subprocess with a bounded time,
whose processes die with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

EXPECTED = ("valid", "invalid", "unknown", "could not run")


def _run(base: Path, *, nemesis: str, time_limit: float, nodes: int, seed: int,
         workload: str, target: str | None, unsafe: Sequence[str], mode: str,
         args: Sequence[str], expect: str) -> Any:
    from splitbrain.campaign.matrix import Matrix
    from splitbrain.campaign.task import run_in

    if expect not in EXPECTED:
        raise ValueError(f"expect must be one of {', '.join(EXPECTED)}, not {expect!r}")
    axes: list[tuple[str, tuple[Any, ...]]] = [
        ("nemesis", (nemesis,)), ("workload", (workload,)), ("unsafe", (tuple(unsafe),))]
    if target is not None:
        axes.append(("target", (target,)))
    matrix = Matrix(name="pytest", seeds=(seed,), axes=tuple(axes), time_limit=time_limit,
                    args=("--nodes", str(nodes), *args), modes=(mode,))
    (spec,) = matrix.expand()
    outcome = run_in(spec, base, base, keep_nodes=True)
    if outcome.verdict != expect:
        report = base / outcome.report if outcome.report else base / (outcome.run_dir or "")
        pytest.fail(f"splitbrain {mode}: {outcome.verdict} (expected {expect})\n"
                    f"{outcome.explanation or outcome.cause}\n"
                    f"report: {report}\nreproduce: {outcome.command}", pytrace=False)
    return outcome


@pytest.fixture
def splitbrain_run(tmp_path: Path) -> Callable[..., Any]:
    """splitbrain_run(nemesis=, time_limit=, nodes=, seed=, workload=, target=, unsafe=, mode=,
    args=, expect="valid") -> RunOutcome; fails the test when the verdict is not `expect`."""
    count = 0

    def run(*, nemesis: str = "partition,kill,pause", time_limit: float = 10.0, nodes: int = 3,
            seed: int = 1, workload: str = "register", target: str | None = None,
            unsafe: Sequence[str] = (), mode: str = "run", args: Sequence[str] = (),
            expect: str = "valid") -> Any:
        nonlocal count
        count += 1
        return _run(tmp_path / f"splitbrain-{count}", nemesis=nemesis, time_limit=time_limit,
                    nodes=nodes, seed=seed, workload=workload, target=target, unsafe=unsafe,
                    mode=mode, args=args, expect=expect)

    return run
