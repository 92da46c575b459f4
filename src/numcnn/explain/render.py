"""Text layout of an explanation: the per-layer summary table and the per-layer detail blocks."""
from __future__ import annotations

from .plan import LayerPlan, human, human_bytes, shape_text

FLOP_NOTE = ("FLOPs: a multiply-add counts 2, any other elementary operation 1; the backward "
             "column includes every gradient the layer can produce (gX of the first layer too).")


def _layer_cell(plan: LayerPlan) -> str:
    kind = plan.label.split("(", 1)[0] if plan.layer is not None else plan.label
    return f"{plan.name} {kind}" if plan.name else kind


def summary(plans: list[LayerPlan], title: str, itemsize: int, batch: int, dtype: str) -> str:
    """One row per layer (shapes, params, FLOPs, output bytes), its arithmetic below, totals."""
    head = ("#", "layer", "input", "output", "params", "FLOPs fwd", "FLOPs bwd", "act. memory")
    rows = [(str(p.index), _layer_cell(p), shape_text(p.in_shape), shape_text(p.out_shape),
             f"{p.params:,}", human(p.flops_fwd), human(p.flops_bwd),
             human_bytes(p.act_bytes(itemsize))) for p in plans]

    def total(values):
        known = [v for v in values if v is not None]
        return human(sum(known)) + ("+?" if len(known) < len(values) else "")

    foot = ("", "total", "", "", f"{sum(p.params for p in plans):,}",
            total([p.flops_fwd for p in plans]), total([p.flops_bwd for p in plans]),
            human_bytes(sum(p.act_bytes(itemsize) for p in plans)))
    widths = [max(len(r[i]) for r in [head, foot, *rows]) for i in range(len(head))]
    right = {0, 4, 5, 6, 7}

    def line(cells):
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
               enumerate(zip(cells, widths))]
        return ("  " + "  ".join(out)).rstrip()

    indent = " " * (4 + widths[0])
    out = [title, line(head)]
    for plan, row in zip(plans, rows):
        out.append(line(row))
        details = list(plan.arithmetic)
        if plan.layer is not None and not plan.label.endswith("()"):
            details = [plan.label + (": " + details[0] if details else "")] + details[1:]
        out += [(indent + d).rstrip() for d in details]
    out.append(line(foot))
    out.append(f"  activation memory: bytes of each layer's output at batch {batch} in {dtype}. "
               + FLOP_NOTE)
    return "\n".join(out)


def detail(plan: LayerPlan, title: str) -> str:
    """The per-axis quantities and every forward/backward tensor of one layer (math.md §8)."""
    out = [title]
    if plan.axis_rows:
        out += [f"  {q:<40} {h:>6} {w:>6}"
                for q, h, w in [("per-axis quantity", "H", "W"), *plan.axis_rows]]
    width = max([22] + [len(shape_text(t.shape)) + 2 for t in plan.tensors])
    name_w = max([10] + [len(t.name) + 1 for t in plan.tensors])
    out.append(f"  {'tensor':<{name_w}} {'shape':<{width}} meaning / how its gradient is formed")
    section = ""
    for t in plan.tensors:
        if t.section and t.section != section:
            section = t.section
            out.append(f"  -- {section}")
        out.append(f"  {t.name:<{name_w}} {shape_text(t.shape):<{width}} {t.meaning}")
    out += ["  " + note for note in plan.notes]
    return "\n".join(out)


def backward_sections(plans: list[LayerPlan]) -> str:
    blocks = []
    for p in plans:
        name = f" {p.name}" if p.name else ""
        blocks.append(detail(p, f"[{p.index}]{name} {p.label}: input {shape_text(p.in_shape)}"))
    return "\n\n".join(blocks)
