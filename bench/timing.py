"""How the harness times: blocks of runs, libraries taking turns, each library's fastest block.

All time is read through a :class:`Timer`, whose clock, sleep and load reading are the real
ones by default; the tests give it fakes, so that nothing they run is timed for real.
"""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: A benchmark's unit of work: one call of the thing measured, inputs built beforehand (what
#: it returns is ignored).
Runner = Callable[[], object]
#: Builds a runner (inputs, model, optimizer) outside the timed part.
Maker = Callable[[], Runner]

#: Timed runs go on for at least this long per block, so that a millisecond case is a median
#: of hundreds of runs rather than of a few that one hiccup of a shared machine can move.
MIN_BLOCK_SECONDS = 0.5

#: A row measured while the 1-minute load average exceeded this is marked "loaded": other
#: processes then slow PyTorch's threads more than numcnn and flatter the ratio.
LOADED = 1.5

#: Warm-up time per block. After the pause between blocks the cores of a virtual machine come
#: back slowly: the first tens of milliseconds of calls measured up to 1.5x slower here.
WARMUP_SECONDS = 0.25

#: Pause between two blocks, so that one library's spinning worker threads are idle before
#: the other's block starts.
PAUSE_SECONDS = 0.3


@dataclass
class Timing:
    median_ms: float
    best_ms: float


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class Timer:
    """The clock, the pauses and the load reading of one benchmark run."""
    rounds: int = 3
    pause: float = PAUSE_SECONDS
    block_seconds: float = MIN_BLOCK_SECONDS
    warmup_seconds: float = WARMUP_SECONDS
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    load: Callable[[], float | None] = load_average

    def block(self, fn: Runner, repeat: int, *, warmup: int = 2,
              warmup_seconds: float | None = None, min_seconds: float = 0.0) -> Timing:
        """Median and best wall time of ``fn()`` over at least ``repeat`` runs and
        ``min_seconds``, after at least ``warmup`` runs and ``warmup_seconds`` (default: the
        timer's) of running it."""
        warmup_seconds = self.warmup_seconds if warmup_seconds is None else warmup_seconds
        start = self.clock()
        done = 0
        while done < warmup or self.clock() - start < warmup_seconds:
            fn()
            done += 1
        times: list[float] = []
        start = self.clock()
        while len(times) < repeat or self.clock() - start < min_seconds:
            t0 = self.clock()
            fn()
            times.append(self.clock() - t0)
        return Timing(1e3 * statistics.median(times), 1e3 * min(times))

    def alternate(self, makers: Sequence[Maker], reps: int) -> list[Timing]:
        """Time each library's runner in its own block, ``rounds`` times in turn (A B A B ...),
        and combine per library: the fastest block median (``median_ms``) and the best single
        run. On a shared machine the load drifts over seconds; alternating blocks exposes both
        libraries to the same drift, and the fastest block is the one least disturbed by it."""
        medians: list[list[float]] = [[] for _ in makers]
        bests: list[list[float]] = [[] for _ in makers]
        for _ in range(self.rounds):
            for i, make in enumerate(makers):
                t = self.block(make(), reps, min_seconds=self.block_seconds)
                medians[i].append(t.median_ms)
                bests[i].append(t.best_ms)
                self.sleep(self.pause)
        return [Timing(min(m), min(b)) for m, b in zip(medians, bests)]
