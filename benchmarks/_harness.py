"""Ratio measurements: payhub against a raw baseline, interleaved in the same run.

Each target is a ratio, never an absolute time: both sides run in alternating
batches on the same machine at the same moment, so machine speed and
background load cancel out. The ratio is the median over rounds of
(candidate batch ÷ the baseline batch run right beside it): on a shared,
noisy host whose speed shifts for seconds at a time, each pair sees the same
conditions, where a ratio of two overall medians could mix a quiet stretch of
one side with a busy stretch of the other. The quartiles of the per-round
ratios are printed too, so a run's noise is visible.
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
    #: per-round ratios of adjacent batches (empty: the ratio of the two times)
    rounds: tuple[float, ...] = ()
    #: each side's fastest batch (0: not measured): their ratio is printed as the
    #: best-case figure timeit's documentation recommends, never the verdict
    candidate_best_us: float = 0.0
    baseline_best_us: float = 0.0

    @property
    def ratio(self) -> float:
        if self.rounds:
            return statistics.median(self.rounds)
        return self.candidate_us / self.baseline_us

    @property
    def ok(self) -> bool:
        return self.ratio <= self.target if self.at_most else self.ratio >= self.target

    def line(self) -> str:
        cmp = "<=" if self.at_most else ">="
        verdict = "ok" if self.ok else "MISSED"
        spread = ""
        if len(self.rounds) >= 4:
            q1, _, q3 = statistics.quantiles(self.rounds, n=4)
            spread = f" [rounds q1-q3 {q1:.3f}-{q3:.3f}"
            if self.baseline_best_us:
                spread += f", best batches {self.candidate_best_us / self.baseline_best_us:.3f}"
            spread += "]"
        return (
            f"{self.name}: payhub {self.candidate_us:.1f} us, raw {self.baseline_us:.1f} us, "
            f"ratio {self.ratio:.3f}{spread} (target {cmp} {self.target}) {verdict}"
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
    rounds: int = 40,
    at_most: bool = True,
) -> Ratio:
    """Per-call times of ``candidate`` and ``baseline`` over interleaved batches, and
    the median ratio of adjacent batches (see the module docstring)."""
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
    return Ratio(
        name,
        statistics.median(cand),
        statistics.median(base),
        target,
        at_most,
        rounds=tuple(c / b for c, b in zip(cand, base, strict=True)),
        candidate_best_us=min(cand),
        baseline_best_us=min(base),
    )


def report(results: list[Ratio]) -> int:
    """Print every result; the exit status says whether every target was met."""
    for result in results:
        print(result.line())
    return 0 if all(r.ok for r in results) else 1


def main_exit(results: list[Ratio]) -> None:
    sys.exit(report(results))
