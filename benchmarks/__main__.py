"""`python -m benchmarks [NAME ...] [--quick] [--json]`: speed and quality, as ratios in one run."""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks import BENCHMARKS, LONG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the gallery's benchmarks. Each prints JSON; comparisons are measured "
        "side by side in the same run.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"which benchmarks: {', '.join(BENCHMARKS)} (default: all but "
        f"{', '.join(sorted(LONG))}, which runs only when named)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer seeds and steps; the output says so"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    results = {}
    for name in args.names or [n for n in BENCHMARKS if n not in LONG]:
        if not args.json:
            print(f"running {name}{' (quick)' if args.quick else ''} …", file=sys.stderr)
        results[name] = BENCHMARKS[name](quick=args.quick, verbose=not args.json)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
