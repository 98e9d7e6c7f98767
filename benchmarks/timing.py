"""Timing shared by the benchmarks: the median of repeated calls after one warm-up call."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn``, after one untimed call (the first
    call pays for lazy initialisation and allocator warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def report_table(
    family,
    text: str,
    quick: bool,
    verbose: bool,
    write_cards: bool | None = None,
    models: tuple[str, ...] | None = None,
) -> None:
    """Print a family's benchmark table and, unless the run is --quick (or ``write_cards``
    says otherwise), write it into the published cards of the family (of ``models`` only,
    when given)."""
    from training.cards import write_benchmark

    if verbose:
        print(text)
    if write_cards if write_cards is not None else not quick:
        write_benchmark(family, text, models)
