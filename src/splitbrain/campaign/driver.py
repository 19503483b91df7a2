"""Running a campaign's runs as tasks on Dask distributed, and recording each as it finishes.

By default on a LocalCluster sized for this machine: one worker of one thread per core, so one
run per core. A run is several processes (its driver — clients, nemesis, then the checker —
and one process per node plus the link proxies); its driver alone keeps a core busy at the
default rate, and two runs on one core turn timeouts into indeterminate ops and slow down
failover, which changes what the run tests. The workers are threads of this process
(`processes=False`): a task only launches a run process and waits for it, so threads cost
nothing in parallelism, start in milliseconds, and die with the driver — kill the driver, even
with SIGKILL, and the worker threads go with it, the runs they forked get the parent-death
signal, and each run's nodes follow through their lifeline.

With `--scheduler tcp://HOST:PORT` the runs go to an existing cluster's workers (each must have
splitbrain installed; start them with one thread per run they should hold at once). A worker
that dies mid-run has its tasks rescheduled by the Dask scheduler; a task whose workers kept
dying (Dask's allowed-failures) comes back as KilledWorker and is recorded "could not run" with
kind "worker-lost". No run is lost: every submitted run ends recorded, or is "not run" in
campaign.json when the campaign itself was interrupted (and --resume runs it).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from splitbrain.campaign.directory import CampaignDir
from splitbrain.campaign.matrix import RunSpec
from splitbrain.campaign.outcome import RunOutcome, without_verdict
from splitbrain.campaign.task import Launcher, Place, execute, stop_active, unpack
from splitbrain.cluster.ports import HOST

CONNECT_TIMEOUT = 30  # seconds to reach an existing scheduler


@dataclass(frozen=True)
class Options:
    scheduler: str | None = None  # tcp://HOST:PORT of an existing cluster; None: a local one
    workers: int | None = None  # local workers (runs at once); None: one per core
    transfer: str = "auto"  # "auto" (in place when the worker shares our filesystem) or "dask"
    keep_nodes: bool = False


def local_workers() -> int:
    """One run per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def where(options: Options) -> str:
    if options.scheduler:
        return options.scheduler
    return f"local: {options.workers or local_workers()} workers"


@contextlib.contextmanager
def dask_client(options: Options) -> Iterator[object]:
    """A Client of the scheduler asked for, or of a LocalCluster of worker threads."""
    from distributed import Client, LocalCluster

    # Dask logs every worker and connection at INFO; a campaign's console is for its runs.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if options.scheduler:
        with Client(options.scheduler, timeout=CONNECT_TIMEOUT) as client:
            yield client
        return
    # Scheduler and workers always serve HTTP (metrics, health); left to themselves they bind
    # port 8787 on the host's address. Pin them to free loopback ports.
    loopback = f"{HOST}:0"
    with LocalCluster(n_workers=options.workers or local_workers(), threads_per_worker=1,
                      processes=False, dashboard_address=loopback,
                      worker_dashboard_address=loopback) as cluster, \
            Client(cluster) as client:
        yield client


def execute_all(cdir: CampaignDir, specs: Sequence[RunSpec], options: Options,
                record: Callable[[RunOutcome], None], launcher: Launcher | None = None) -> None:
    """Run every spec as a Dask task; `record` each outcome as it arrives.

    KeyboardInterrupt (Ctrl-C, or SIGTERM turned into it by the command) cancels what is
    queued, stops the runs under way on local workers, and propagates; runs that had not
    finished are not recorded.
    """
    from distributed import KilledWorker, as_completed

    place = Place(str(cdir.path), cdir.token(), options.transfer, options.keep_nodes)
    prefix = f"splitbrain-{place.token[:8]}"
    with dask_client(options) as client:
        futures = {client.submit(execute, spec, place, launcher,  # type: ignore[attr-defined]
                                 key=f"{prefix}-{spec.id}", pure=False): spec for spec in specs}
        try:
            for future in as_completed(futures):
                spec = futures[future]
                try:
                    delivery = future.result()
                except KilledWorker as exc:
                    outcome = without_verdict(spec, "worker-lost", f"its workers died: {exc}")
                except Exception as exc:  # the task itself failed: no verdict, say why
                    outcome = without_verdict(spec, "task-error", f"{type(exc).__name__}: {exc}")
                else:
                    outcome = delivery.outcome
                    if delivery.files is not None:
                        cdir.clear_run(spec.id)
                        unpack(delivery.files, cdir.runs)
                record(outcome)
        except KeyboardInterrupt:
            client.cancel(list(futures))  # type: ignore[attr-defined]
            if not options.scheduler:
                stop_active()  # the local workers are our threads: stop their runs now
            raise
