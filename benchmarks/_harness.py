"""Ratio measurements: payhub against a raw baseline, interleaved in the same run.

Each target is a ratio, never an absolute time: both sides run in alternating
batches on the same machine at the same moment, and the medians of the
per-call times are compared, so machine speed and background load cancel out.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Ratio:
    name: str
    candidate_us: float
    baseline_us: float
    target: float
    #: True when the ratio must stay at or below the target, False when at or above.
    at_most: bool = True

    @property
    def ratio(self) -> float:
        return self.candidate_us / self.baseline_us

    @property
    def ok(self) -> bool:
        return self.ratio <= self.target if self.at_most else self.ratio >= self.target

    def line(self) -> str:
        cmp = "<=" if self.at_most else ">="
        verdict = "ok" if self.ok else "MISSED"
        return (
            f"{self.name}: payhub {self.candidate_us:.1f} us, raw {self.baseline_us:.1f} us, "
            f"ratio {self.ratio:.3f} (target {cmp} {self.target}) {verdict}"
        )


def _batch(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - start) / n / 1000.0


def compare(
    name: str,
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    target: float,
    batch: int = 50,
    rounds: int = 30,
    at_most: bool = True,
) -> Ratio:
    """Median per-call time of ``candidate`` and ``baseline`` over interleaved batches."""
    for _ in range(3):  # warm caches and lazily built state on both sides
        candidate()
        baseline()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        cand: list[float] = []
        base: list[float] = []
        for i in range(rounds):
            if i % 2:
                cand.append(_batch(candidate, batch))
                base.append(_batch(baseline, batch))
            else:
                base.append(_batch(baseline, batch))
                cand.append(_batch(candidate, batch))
    finally:
        if gc_was_enabled:
            gc.enable()
    return Ratio(name, statistics.median(cand), statistics.median(base), target, at_most)


def report(results: list[Ratio]) -> int:
    """Print every result; the exit status says whether every target was met."""
    for result in results:
        print(result.line())
    return 0 if all(r.ok for r in results) else 1


def main_exit(results: list[Ratio]) -> None:
    sys.exit(report(results))
