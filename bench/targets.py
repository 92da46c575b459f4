"""The speed and memory targets of the kernels, each with the value this run measured."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from bench.cases import (
    LENET_BATCHES,
    MEMORY_TARGET_CASE,
    RESNET_STEM_CASE,
    TARGET_CONV_CASES,
    TRANSPOSE_CASE,
    lenet_step_name,
)

Row = dict[str, Any]


class Target(NamedTuple):
    name: str
    limit: float
    kind: str  # "min": the value must reach the limit; "max": stay at or below it


#: What the kernels aim at, quiet machine, float32, same run.
TARGETS = [
    Target("LeNet-5 step B64: numcnn img/s / torch img/s", 0.75, "min"),
    Target("LeNet-5 step B256: numcnn img/s / torch img/s", 0.6, "min"),
    Target("conv fwd+bwd time ratio, geometric mean of the 4 cases", 1.4, "max"),
    Target("conv fwd+bwd time ratio, worst of the 4 cases", 1.8, "max"),
    Target("ResNet stem fwd+bwd time ratio", 1.0, "max"),
    Target("peak extra memory conv 32->64 k3, numcnn / torch", 1.5, "max"),
    Target("conv_transpose2d decoder layer fwd+bwd time ratio", 1.5, "max"),
]

_KIND = {target.name: target.kind for target in TARGETS}


def _values(result: dict[str, Any]) -> list[float | None]:
    """The measured value of each target, in the order of :data:`TARGETS`."""
    rows = {row["case"]: row for row in result.get("rows", [])}
    values: list[float | None] = []
    for batch in LENET_BATCHES:
        row = rows.get(lenet_step_name(batch))
        values.append(row["torch_ms"] / row["numcnn_ms"] if row and row.get("torch_ms") else None)
    ratios = [rows.get(case.name + " fwd+bwd", {}).get("ratio") for case in TARGET_CONV_CASES]
    known = [r for r in ratios if r]
    complete = len(known) == len(TARGET_CONV_CASES)
    values.append(float(np.exp(np.mean(np.log(known)))) if complete else None)
    values.append(max(known) if complete else None)
    values.append(rows.get(RESNET_STEM_CASE.name + " fwd+bwd", {}).get("ratio"))
    memory = (result.get("memory") or {}).get("rows", [])
    values.append(next((m.get("ratio") for m in memory
                        if m["case"].startswith(MEMORY_TARGET_CASE.name)), None))
    values.append(rows.get(TRANSPOSE_CASE.name + " fwd+bwd", {}).get("ratio"))
    return values


def target_rows(result: dict[str, Any]) -> list[Row]:
    """Each of :data:`TARGETS` with the value this run covered (None where it did not), whether
    it is met, and whether any row of the run was measured on a loaded host."""
    loaded = any(row.get("loaded") for row in result.get("rows", []))
    return [{"target": target.name, "limit": target.limit, "value": value, "loaded": loaded,
             "met": None if value is None else
             (value >= target.limit if target.kind == "min" else value <= target.limit)}
            for target, value in zip(TARGETS, _values(result))]


def format_target_row(row: Row) -> str:
    value = f"{row['value']:6.2f}" if row["value"] is not None else "     -"
    verdict = {True: "met", False: "NOT met", None: "not measured"}[row["met"]]
    bound = ">=" if _KIND[row["target"]] == "min" else "<="
    mark = " (loaded host)" if row["loaded"] and row["value"] is not None else ""
    return f"{row['target']:<60} {value}  target {bound} {row['limit']:<4}  {verdict}{mark}"
