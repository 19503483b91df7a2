"""Which faults a target can take in a network mode: the nemesis is given only those.

    faults, notes = fit(("partition", "crash"), target, "netns", everything=False)

Each fault, and some variants, need a capability of the target (target.CAPABILITIES) or a
network mode that can do it (REQUIRES, LIMITS). A fault or variant the user named that cannot be
done is a FaultError naming what is missing (a usage error, 64). A fault named without variants
is narrowed to the variants that can be done, and `--nemesis all` to the faults that can; each
narrowing is returned as a note, so the run says what it left out. Pure.
"""

from __future__ import annotations

from splitbrain.nemesis.schedule import (
    AIMED_NET,
    DISK_FAULTS,
    LEADER_PAUSES,
    parse_faults,
    variants,
)
from splitbrain.targets.target import CAPABILITIES, Target

# (fault, variant or None for the whole fault) -> capability it needs
REQUIRES: dict[tuple[str, str | None], str] = {
    ("churn", None): "events",  # it follows the nodes' role events (cluster/roles.py)
    ("crash", None): "crash-points",
    ("clock", None): "clock",
    **{(fault, None): "disk" for fault in DISK_FAULTS},
    ("partition", "isolate-leader"): "leader",
    **{(fault, "leader"): "leader" for fault in ("kill", "pause", "restart", "crash",
                                                 *DISK_FAULTS)},
    **{("pause", kind): "events" for kind in LEADER_PAUSES},  # timed by role events
    **{("net", kind): "raft-messages" for kind in AIMED_NET},  # read message kinds and terms
}
# network mode -> fault -> the only variants it can do
LIMITS: dict[str, dict[str, frozenset[str]]] = {"netns": {"net": frozenset({"drop"})}}


class FaultError(ValueError):
    """A fault the target or the network mode cannot take."""


def _lacks(target: Target, network: str, fault: str, variant: str | None) -> str | None:
    """Why `fault[:variant]` cannot be done here, or None."""
    need = REQUIRES.get((fault, variant))
    if need is not None and need not in target.capabilities:
        return f"target {target.name} has no {CAPABILITIES[need].split(':')[0]}"
    if variant is None and fault == "net" and network == "proxy" and not target.framed:
        return (f"target {target.name}'s peer traffic is not framed, so the proxies cannot act "
                "on its messages (try --network netns for packet loss)")
    allowed = LIMITS.get(network, {}).get(fault)
    if variant is not None and allowed is not None and variant not in allowed:
        return f"network mode {network} can only do {fault}:{'+'.join(sorted(allowed))}"
    return None


def fit(faults: tuple[str, ...], target: Target, network: str, *, everything: bool
        ) -> tuple[tuple[str, ...], list[str]]:  # fmt: skip
    """The faults (as parse_faults gives them) narrowed to what can be done, and notes saying
    what was left out. FaultError for a fault or variant named that cannot be done."""
    kept: list[str] = []
    notes: list[str] = []
    for spec in faults:
        fault, _, named = spec.partition(":")
        why = _lacks(target, network, fault, None)
        if why is not None:
            if not everything:
                raise FaultError(f"{fault}: {why}")
            notes.append(f"no {fault}: {why}")
            continue
        wanted = named.split("+") if named else None
        cannot = {v: w for v in (wanted or variants(fault))
                  if (w := _lacks(target, network, fault, v)) is not None}  # fmt: skip
        if wanted is not None and cannot:
            variant, why = next(iter(cannot.items()))
            raise FaultError(f"{fault}:{variant}: {why}")
        if not cannot:
            kept.append(spec)
            continue
        left = [v for v in variants(fault) if v not in cannot]
        if not left:
            raise FaultError(f"{fault}: {next(iter(cannot.values()))}")
        narrowed = parse_faults(f"{fault}:{'+'.join(left)}")[0]
        kept.append(narrowed)
        notes.append(f"{narrowed} only: {'; '.join(sorted(set(cannot.values())))} "
                     f"(not {', '.join(sorted(cannot))})")
    return tuple(kept), notes
