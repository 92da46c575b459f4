"""The building blocks of the page's stages: a :class:`Stage`, numbers and sums as shown.

A stage shows some arrays and may step through *cells*, each marking the cells of the arrays it
reads (a window, a weight, routed gradients) and the one cell it produces; :mod:`.page` and
:mod:`.page_transpose` build the stages of each layer kind from these.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import SupportsFloat, TypedDict

import numpy as np

from .plan import LayerPlan

#: Most cells one stage steps through (the grids still show every value).
MAX_CELLS = 400
#: Arrays whose first axis is not the batch (weights): every leading axis makes a grid.
NOT_BATCHED = ("W", "W_T", "gW", "gW_rot", "R", "D")

#: A cell as the page reads it: ``[grid, row, col, class]`` ("m" marked, "a" argmax or
#: active, "r" what the remainder or output_padding adds), JSON-ready.
Mark = list[int | str]
#: Cells as the stage functions write them: ``(grid, row, col)`` plus an optional class.
MarkIn = Sequence[int | str]
#: The cells one step reads, per array name.
Marks = dict[str, list[MarkIn]]


class Grid(TypedDict):
    """One 2-D slice of an array: ``label`` such as ``W[1, 0]``, ``rows`` with -inf as None."""

    label: str
    rows: list[list[float | None]]


class Cell(TypedDict):
    """One step of a stage: what to say, the sum written out, the cells read, the result."""

    say: str
    terms: str
    mark: dict[str, list[Mark]]
    target: Mark


class StageData(TypedDict):
    """A stage as the page reads it (see :class:`Stage`)."""

    id: str
    title: str
    lines: list[str]
    show: list[str]
    fill: str | None
    marks: dict[str, list[Mark]]
    cells: list[Cell]
    more: int


def num(v: SupportsFloat) -> str:
    """A value as shown: integers without a decimal point, else 4 significant digits."""
    v = float(v)
    if not np.isfinite(v):
        return "−∞" if v < 0 else "∞"
    return str(int(v)) if v == int(v) else f"{v:.4g}"


def grids(name: str, a: np.ndarray) -> list[Grid]:
    """One ``{"label", "rows"}`` per 2-D slice (sample 0 for activations); -inf as None."""
    a = np.asarray(a, dtype=np.float64)
    if name not in NOT_BATCHED and a.ndim == 4:
        a = a[0]
    lead = a.shape[:-2]
    out: list[Grid] = []
    for idx in np.ndindex(*lead):
        g = a[idx]
        rows = [[None if not np.isfinite(v) else round(float(v), 6) for v in row] for row in g]
        label = f"{name}[{', '.join(map(str, idx))}]" if lead else name
        out.append({"label": label, "rows": rows})
    return out


def times(a: SupportsFloat, b: SupportsFloat) -> str:
    """``a·b`` with negative factors in parentheses: ``2·(−1)``."""
    return "·".join(f"({num(v)})" if float(v) < 0 else num(v) for v in (a, b))


def nonzero_sum(pairs: Sequence[tuple[float, float]], result: SupportsFloat) -> str:
    """The products that are not zero, ``= result``, and how many zero products were left out."""
    kept = [times(x, y) for x, y in pairs if x * y != 0]
    zeros = len(pairs) - len(kept)
    note = f" ({zeros} of the {len(pairs)} products are 0)" if zeros else ""
    return (" + ".join(kept) if kept else "0") + f" = {num(result)}" + note


class Stage:
    """One stage of the page: a title, formula lines, arrays shown, optional cells."""

    def __init__(self, sid: str, title: str, lines: Iterable[str], show: Iterable[str],
                 fill: str | None = None):
        self.data: StageData = {"id": sid, "title": title, "lines": list(lines),
                                "show": list(show), "fill": fill, "marks": {}, "cells": [],
                                "more": 0}

    def mark(self, name: str, g: int, i: int, j: int, cls: str = "m") -> None:
        self.data["marks"].setdefault(name, []).append([int(g), int(i), int(j), cls])

    def cell(self, say: str, terms: str, marks: Mapping[str, Sequence[MarkIn]],
             target: MarkIn) -> None:
        if len(self.data["cells"]) >= MAX_CELLS:
            self.data["more"] += 1
            return
        self.data["cells"].append({
            "say": say, "terms": terms,
            "mark": {k: [_mark(m) for m in v] for k, v in marks.items()},
            "target": [target[0], *(int(x) for x in target[1:])]})


def _mark(m: MarkIn) -> Mark:
    """``(grid, row, col[, class])`` as the page reads it: four entries, class "m" by default."""
    out: Mark = [int(x) for x in m[:3]]
    out.append(m[3] if len(m) > 3 else "m")
    return out


def size_lines(plan: LayerPlan) -> list[str]:
    return [f"{q:<38} H = {h:<4} W = {w}" for q, h, w in plan.axis_rows] + list(plan.arithmetic)
