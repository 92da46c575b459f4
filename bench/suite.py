"""The whole benchmark, table after table: speed, peak memory, MyGrad, one MNIST epoch, the
naive loops and the targets."""
from __future__ import annotations

import argparse
from typing import Any

from bench.cases import CONV_CASES, LENET_CONV_CASES
from bench.epoch import format_epoch_row, mnist_epoch
from bench.memory import HEADER as MEMORY_HEADER
from bench.memory import run_memory
from bench.naive import format_naive, naive_speedup
from bench.numcnn_cases import cols_budget
from bench.other_libraries import run_other_libraries
from bench.speed import HEADER as SPEED_HEADER
from bench.speed import run_cases
from bench.targets import format_target_row, target_rows
from bench.timing import LOADED, Timer


def run_all(args: argparse.Namespace, timer: Timer) -> dict[str, Any]:
    """Every table that ``args`` (the flags of :mod:`bench.command`) asks for, printed as it
    is measured; returns them all, as ``--json`` writes them."""
    budget = args.memory_budget
    if budget is not None:
        print(f"numcnn im2col budget: {budget:g} MiB (numcnn.ops.engine.COLS_BUDGET_BYTES)")
    print(f"load average at start: {timer.load()}; rows above {LOADED} are marked 'loaded'")
    print(SPEED_HEADER)
    with cols_budget(budget):
        result = run_cases(timer, args.repeat, args.quick, not args.no_torch)
    print(f"GEMM peak {result['gemm_peak_gflops']:.1f} GFLOP/s; BLAS: {result['blas']}")
    result["memory"] = None
    if not args.no_memory:
        print("\n" + MEMORY_HEADER)
        cases = LENET_CONV_CASES if args.quick else CONV_CASES
        result["memory"] = run_memory(cases, not args.no_torch, budget)
        print("(a fresh process per library and case: peak resident size during its first "
              "fwd+bwd minus the size before)")
    with cols_budget(budget):
        result["other_libraries"] = run_other_libraries(timer, args.repeat)
    result["epoch"] = None
    if not (args.quick or args.no_epoch):
        try:
            with cols_budget(budget):
                result["epoch"] = mnist_epoch(clock=timer.clock)
            print("\n" + format_epoch_row(result["epoch"]), flush=True)
        except FileNotFoundError as err:
            print(f"\nskipping the MNIST epoch: {' '.join(str(err).split())}")
    result["naive"] = naive_speedup(timer)
    print(format_naive(result["naive"]))
    result["targets"] = target_rows(result)
    print(f"\ntargets (load average now {timer.load()})")
    for row in result["targets"]:
        print(format_target_row(row))
    return result
