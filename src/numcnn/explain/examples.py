"""The pages shipped in ``docs/pages/``: math.md's first example (§0), the seed's two examples
(§9), max pooling, and the transposed convolution that is the 5x5 example's gX (§11.3).

Both conv examples use ``X[i, j] = H·i + j``, the kernel ``[[1, 0, -1], [2, 1, 0], [0, -1, 1]]``,
``b = 0``, stride 2 and ``gY = [[1, 2], [3, 4]]``: the 5x5 input has remainder r = 0 and a 7x7
inserted gradient, the 6x6 input has r = 1 and the 8x8 one. Regenerate the pages with
``python -m numcnn.explain.examples docs/pages`` (a test checks they are up to date).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .html import render_page

SEED_KERNEL = [[1.0, 0, -1], [2, 1, 0], [0, -1, 1]]


def seed_inputs(H: int) -> dict[str, np.ndarray]:
    """math.md §9's arrays for an H x H input."""
    return {"x": (H * np.arange(H)[:, None] + np.arange(H)).reshape(1, 1, H, H) * 1.0,
            "w": np.array(SEED_KERNEL).reshape(1, 1, 3, 3), "b": np.zeros(1),
            "gy": np.array([[1.0, 2], [3, 4]]).reshape(1, 1, 2, 2)}


def maxpool_inputs() -> dict[str, np.ndarray]:
    """A 5x5 input of distinct values (one clear maximum per window) and a 3x3 gY."""
    x = np.array([[3, 8, 1, 6, 2], [5, 12, 9, 4, 7], [0, 14, 10, 16, 11], [13, 2.5, 15, 6.5, 1.5],
                  [4.5, 0.5, 3.5, 5.5, 17]])
    return {"x": x.reshape(1, 1, 5, 5), "gy": np.arange(1.0, 10).reshape(1, 1, 3, 3)}


def first_inputs() -> dict[str, np.ndarray]:
    """math.md §0: a 4x4 input, the seed's kernel, no bias, stride 1."""
    x = np.array([[1.0, 2, 0, 1], [0, 1, 3, 1], [2, 1, 0, 2], [1, 0, 1, 3]])
    return {"x": x.reshape(1, 1, 4, 4), "w": np.array(SEED_KERNEL).reshape(1, 1, 3, 3),
            "gy": np.array([[1.0, 2], [3, 4]]).reshape(1, 1, 2, 2)}


def transpose_inputs() -> dict[str, np.ndarray]:
    """math.md §11.3: the seed's gY = [[1, 2], [3, 4]] as the input of ConvTranspose2d(1, 1, 3,
    stride=2) with the seed's kernel, so Y is §9.1's 5x5 gX; its gY is §9.1's 5x5 X, so gX is
    §9.1's Y and gW the conv's gW (the adjoint pair, both ways)."""
    seed = seed_inputs(5)
    return {"x": seed["gy"], "w": seed["w"], "b": np.zeros(1), "gy": seed["x"]}


#: file name -> (layer spec, C x H x W, inputs, title)
PAGES = {
    "conv-4x4-k3-s1.html": ("conv2d(1, 1, 3, bias=False)", (1, 4, 4), first_inputs,
                            "A first example: 4x4 input, 3x3 kernel, stride 1"),
    "conv-5x5-k3-s2.html": ("conv2d(1, 1, 3, stride=2)", (1, 5, 5), lambda: seed_inputs(5),
                            ("The seed's example: 5x5 input, 3x3 kernel, stride 2 "
                             "(r = 0, P is 7x7)")),
    "conv-6x6-k3-s2.html": ("conv2d(1, 1, 3, stride=2)", (1, 6, 6), lambda: seed_inputs(6),
                            ("The seed's example: 6x6 input, 3x3 kernel, stride 2 "
                             "(r = 1, P is 8x8)")),
    "maxpool-5x5-k3-s2-p1.html": ("maxpool2d(3, stride=2, padding=1)", (1, 5, 5), maxpool_inputs,
                                  "Max pooling: 5x5 input, 3x3 window, stride 2, padding 1"),
    "convtranspose-2x2-k3-s2.html": ("convtranspose2d(1, 1, 3, stride=2)", (1, 2, 2),
                                     transpose_inputs,
                                     ("ConvTranspose2d: 2x2 input, 3x3 kernel, stride 2 "
                                      "(the seed's 5x5 gX as a layer)")),
}


def page_text(name: str) -> str:
    """The HTML of one shipped page, as this version of numcnn computes it."""
    from . import explain_page

    spec, shape, inputs, title = PAGES[name]
    return render_page(explain_page(spec, shape, inputs=inputs(), title=title))


def write_pages(folder) -> list[Path]:
    """Write every page of :data:`PAGES` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in PAGES:
        path = folder / name
        path.write_text(page_text(name), encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write_pages(sys.argv[1] if len(sys.argv) > 1 else "docs/pages"):
        print(f"wrote {written}")
