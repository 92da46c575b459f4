"""The peak-memory table: conv forward+backward, numcnn against PyTorch, each library and case
measured in a fresh process (see :mod:`bench.memory_probe`)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numcnn
from bench.cases import Conv, ConvCase
from bench.machine import blas_threads

Row = dict[str, Any]

#: The folder that holds the package ``bench``: the fresh process imports the harness from it.
HARNESS_PARENT = Path(__file__).resolve().parents[1]

_PROBE_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); "
               "from bench.memory_probe import main; sys.exit(main(sys.argv[2:]))")

HEADER = f"{'peak extra memory, float32':<52} {'numcnn MiB':>10} {'torch MiB':>10} {'ratio':>6}  method"
PROTOCOL = ("first fwd+bwd call in a fresh process per (library, case); "
            "extra = peak resident size during the call - resident size before")


def _probe_env() -> dict[str, str]:
    """This environment, with the numcnn of a source checkout first where that is the one
    imported here (installed or not), so that the fresh process measures the same numcnn."""
    env = dict(os.environ)
    src = Path(numcnn.__file__).resolve().parents[1]
    if src.name == "src":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def memory_probe(library: str, conv: Conv, budget_mib: float | None = None,
                 threads: int | None = None, warmup_batch: int = 1,
                 timeout: float = 600) -> dict[str, Any]:
    """:func:`bench.memory_probe.measure_peak_memory` of ``library`` on ``conv`` in a fresh
    interpreter."""
    cmd = [sys.executable, "-c", _PROBE_CODE, str(HARNESS_PARENT), library, *map(str, conv),
           "--warmup-batch", str(warmup_batch)]
    if budget_mib is not None:
        cmd += ["--budget", repr(float(budget_mib))]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=_probe_env(),
                          timeout=timeout)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit {proc.returncode}"
        raise RuntimeError(f"memory probe {library} {list(conv)} failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_memory(cases: Sequence[ConvCase], with_torch: bool,
               budget_mib: float | None = None) -> dict[str, Any]:
    """Peak extra memory of conv forward+backward, numcnn against PyTorch, one row per case."""
    threads = blas_threads()
    with_torch = with_torch and importlib.util.find_spec("torch") is not None
    rows = []
    for name, conv in cases:
        row: Row = {"case": name + " fwd+bwd", "numcnn_mib": None, "torch_mib": None,
                    "ratio": None}
        try:
            nc = memory_probe("numcnn", conv, budget_mib)
            row.update(numcnn_mib=nc["extra_mib"], method=nc["method"],
                       cols_budget_bytes=nc["cols_budget_bytes"])
            if with_torch:
                th = memory_probe("torch", conv, threads=threads)
                row.update(torch_mib=th["extra_mib"])
                if th["method"] != nc["method"]:
                    row["method"] = f"numcnn {nc['method']}, torch {th['method']}"
                if th["extra_mib"] > 0:
                    row["ratio"] = nc["extra_mib"] / th["extra_mib"]
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as err:
            row["error"] = str(err)
        rows.append(row)
        print(format_memory_row(row), flush=True)
    return {"rows": rows, "cols_budget_mib": budget_mib, "torch_threads": threads,
            "protocol": PROTOCOL}


def format_memory_row(row: Row) -> str:
    def mib(v: float | None) -> str:
        return f"{v:10.1f}" if v is not None else "         -"

    ratio = f"{row['ratio']:6.2f}" if row.get("ratio") else "     -"
    tail = f"  {row['method']}" if row.get("method") else ""
    if row.get("error"):
        tail += f"  ({row['error']})"
    return f"{row['case']:<52} {mib(row.get('numcnn_mib'))} {mib(row.get('torch_mib'))} {ratio}{tail}"
