"""Write a large register history (linearizable by construction, or corrupted) for the
checker's benchmarks; splitbrain.testing.registers says how it is made.

    python bench/histgen.py --calls 100000 --seed 1 -o /tmp/h100k.jsonl
    python bench/histgen.py --calls 100000 --corrupt 1 -o /tmp/h100k-bad.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from splitbrain.testing.registers import generate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--info", type=float, default=0.05, help="share of indeterminate calls")
    parser.add_argument("--corrupt", type=int, default=0, help="reads given a value never written")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    with args.out.open("w") as out:
        counts = generate(out, calls=args.calls, keys=args.keys, processes=args.processes,
                          info=args.info, seed=args.seed, corrupt=args.corrupt)
    json.dump({"path": str(args.out), "calls": args.calls, **counts}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
