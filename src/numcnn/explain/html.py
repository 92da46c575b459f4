"""One self-contained HTML page (inline CSS, JS and data; no network) stepping through a layer.

The page is a viewer: it reads the JSON of :func:`numcnn.explain.page.page_data` from a
``<script type="application/json">`` element and draws grids, marks and sentences. It computes
nothing. Next/Previous buttons, the arrow keys (also Space, PageUp/PageDown, Home/End) and the
stage list move between steps; the address keeps the step (``#step-12``) so a step can be linked.
"""
from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

from .page import PageData

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2327; background: #fafafa; }
header { padding: 12px 20px; background: #263238; color: #eceff1; }
header h1 { font-size: 19px; margin: 0 0 4px 0; }
header p { margin: 0; color: #b0bec5; font-family: ui-monospace, monospace; font-size: 13px; }
#wrap { display: flex; align-items: flex-start; }
nav { width: 250px; flex: none; padding: 12px; border-right: 1px solid #ddd; background: #fff;
      min-height: calc(100vh - 70px); box-sizing: border-box; }
nav ol { padding-left: 22px; margin: 8px 0; }
nav li { cursor: pointer; padding: 3px 2px; border-radius: 3px; }
nav li.on { background: #fff3c4; font-weight: 600; }
nav li:hover { text-decoration: underline; }
main { padding: 12px 20px; flex: 1; min-width: 0; }
.bar { display: flex; gap: 10px; align-items: center; margin-bottom: 8px; }
button { font-size: 15px; padding: 5px 14px; border: 1px solid #90a4ae; border-radius: 4px;
         background: #fff; cursor: pointer; }
button:disabled { opacity: .4; cursor: default; }
#counter { font-family: ui-monospace, monospace; color: #455a64; }
h2 { font-size: 18px; margin: 6px 0; }
pre.lines { background: #eef3f6; padding: 8px 10px; border-radius: 4px; margin: 6px 0;
            white-space: pre-wrap; font: 13px/1.4 ui-monospace, monospace; }
#cell { min-height: 3.2em; padding: 6px 10px; margin: 6px 0; border-left: 4px solid #f9a825;
        background: #fffdf3; }
#cell .say { font-weight: 600; }
#cell .terms { font: 13px/1.5 ui-monospace, monospace; word-break: break-word; }
#arrays { display: flex; flex-wrap: wrap; gap: 18px; margin-top: 10px; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-size: 13px; margin-bottom: 4px; max-width: 420px; }
figcaption b { font-family: ui-monospace, monospace; }
.grids { display: flex; flex-wrap: wrap; gap: 10px; }
.grid small { display: block; font: 12px ui-monospace, monospace; color: #546e7a; }
table { border-collapse: collapse; font: 13px ui-monospace, monospace; }
td { border: 1px solid #cfd8dc; min-width: 30px; height: 24px; text-align: right;
     padding: 0 4px; background: #fff; }
th { font-weight: normal; color: #90a4ae; font-size: 10px; padding: 0 3px; }
td.zero { color: #b0bec5; }
td.m { background: #bbdefb; }
td.r { background: #ffcdd2; }
td.a { background: #ffe082; font-weight: 700; }
td.target { outline: 3px solid #e65100; outline-offset: -2px; background: #ffe0b2;
            font-weight: 700; }
td.pending { color: transparent; background: #f5f5f5; }
.more { font-size: 12px; color: #78909c; }
.key { font-size: 12px; color: #607d8b; margin-top: 14px; }
.key div { margin-top: 4px; }
.key span { display: inline-block; width: 14px; height: 12px; vertical-align: middle;
            border: 1px solid #cfd8dc; margin: 0 6px 0 0; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("page-data").textContent);
  var MAXV = 14;
  var steps = [];
  DATA.stages.forEach(function (st, si) {
    steps.push([si, -1]);
    st.cells.forEach(function (c, ci) { steps.push([si, ci]); });
  });
  var cur = 0;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v, nul) {
    if (v === null) return nul;
    if (Number.isInteger(v)) return String(v);
    return String(Number(v.toPrecision(4)));
  }
  function key(g, i, j) { return g + ":" + i + ":" + j; }
  function collect(marks, name, out) {
    (marks[name] || []).forEach(function (m) { out[key(m[0], m[1], m[2])] = m[3] || "m"; });
  }
  function span(list, n) {
    if (n <= MAXV) return [0, n];
    var lo = n, hi = -1;
    list.forEach(function (x) { lo = Math.min(lo, x); hi = Math.max(hi, x); });
    if (hi < 0) return [0, MAXV];
    var mid = Math.floor((lo + hi) / 2), a = Math.max(0, Math.min(n - MAXV, mid - (MAXV >> 1)));
    return [a, a + MAXV];
  }
  function drawGrid(name, gi, grid, marks, pending, target) {
    var box = el("div", "grid"), rows = grid.rows, H = rows.length, W = rows[0].length;
    var ri = [], ci = [];
    Object.keys(marks).forEach(function (k) {
      var p = k.split(":");
      if (+p[0] === gi) { ri.push(+p[1]); ci.push(+p[2]); }
    });
    if (target && target[1] === gi) { ri.push(target[2]); ci.push(target[3]); }
    var rs = span(ri, H), cs = span(ci, W);
    var label = grid.label + (H > MAXV || W > MAXV ? "  rows " + rs[0] + "…" + (rs[1] - 1) +
        ", cols " + cs[0] + "…" + (cs[1] - 1) + " of " + H + "x" + W : "");
    box.appendChild(el("small", null, label));
    var t = el("table"), head = el("tr");
    head.appendChild(el("th"));
    for (var j = cs[0]; j < cs[1]; j++) head.appendChild(el("th", null, String(j)));
    t.appendChild(head);
    for (var i = rs[0]; i < rs[1]; i++) {
      var tr = el("tr");
      tr.appendChild(el("th", null, String(i)));
      for (j = cs[0]; j < cs[1]; j++) {
        var v = rows[i][j], td = el("td", null, fmt(v, DATA.kind === "maxpool2d" ? "−∞" : ""));
        var k = key(gi, i, j), cls = [];
        if (v === 0) cls.push("zero");
        if (marks[k]) cls.push(marks[k]);
        if (pending && pending(gi, i, j)) cls.push("pending");
        if (target && target[1] === gi && target[2] === i && target[3] === j) cls.push("target");
        td.className = cls.join(" ");
        td.setAttribute("data-a", name);
        td.setAttribute("data-g", gi);
        td.setAttribute("data-i", i);
        td.setAttribute("data-j", j);
        tr.appendChild(td);
      }
      t.appendChild(tr);
    }
    box.appendChild(t);
    return box;
  }
  function render() {
    var si = steps[cur][0], ci = steps[cur][1], st = DATA.stages[si];
    var cell = ci >= 0 ? st.cells[ci] : null;
    document.getElementById("counter").textContent = "step " + (cur + 1) + " / " + steps.length;
    document.getElementById("prev").disabled = cur === 0;
    document.getElementById("next").disabled = cur === steps.length - 1;
    document.getElementById("title").textContent = (si + 1) + ". " + st.title;
    document.getElementById("lines").textContent = st.lines.join("\n");
    document.getElementById("lines").style.display = st.lines.length ? "" : "none";
    var box = document.getElementById("cell");
    box.innerHTML = "";
    if (cell) {
      box.appendChild(el("div", "say", cell.say));
      box.appendChild(el("div", "terms", cell.terms));
    } else if (st.cells.length) {
      box.appendChild(el("div", "say", st.cells.length === 1 ? "Press Next (or →) for the detail." :
          "Press Next (or →) to go through the " + st.cells.length + " cells of this step one by one."));
    }
    box.style.display = (cell || st.cells.length) ? "" : "none";
    if (st.more) box.appendChild(el("div", "more", "(the first " + st.cells.length +
        " cells are stepped through; " + st.more + " more are shown in the grids only)"));
    var done = {}, stepped = {};
    if (st.fill) {
      st.cells.forEach(function (c, n) {
        var k = key(c.target[1], c.target[2], c.target[3]);
        stepped[k] = true;
        if (n <= ci) done[k] = true;
      });
    }
    var arrays = document.getElementById("arrays");
    arrays.innerHTML = "";
    st.show.forEach(function (name) {
      var a = DATA.arrays[name], fig = el("figure"), cap = el("figcaption");
      cap.appendChild(el("b", null, name + " " + JSON.stringify(a.shape).replace(/,/g, ", ")));
      cap.appendChild(document.createTextNode(" " + a.caption));
      fig.appendChild(cap);
      var marks = {};
      collect(st.marks, name, marks);
      if (cell) collect(cell.mark, name, marks);
      var pending = st.fill === name ? function (g, i, j) {
        var k = key(g, i, j);
        return stepped[k] && !done[k];
      } : null;
      var target = cell && cell.target[0] === name ? cell.target : null;
      var gs = el("div", "grids");
      fig.setAttribute("data-array", name);
      a.grids.forEach(function (g, gi) { gs.appendChild(drawGrid(name, gi, g, marks, pending, target)); });
      fig.appendChild(gs);
      arrays.appendChild(fig);
    });
    var items = document.querySelectorAll("nav li");
    for (var m = 0; m < items.length; m++) items[m].className = m === si ? "on" : "";
    try { history.replaceState(null, "", "#step-" + (cur + 1)); } catch (e) { /* file:// */ }
  }
  function go(k) { cur = Math.max(0, Math.min(steps.length - 1, k)); render(); }
  function firstOf(si) {
    for (var k = 0; k < steps.length; k++) if (steps[k][0] === si) return k;
    return 0;
  }
  var list = document.getElementById("stages");
  DATA.stages.forEach(function (st, si) {
    var li = el("li", null, st.title);
    li.addEventListener("click", function () { go(firstOf(si)); });
    list.appendChild(li);
  });
  document.getElementById("prev").addEventListener("click", function () { go(cur - 1); });
  document.getElementById("next").addEventListener("click", function () { go(cur + 1); });
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var k = e.key;
    if (k === "ArrowRight" || k === "ArrowDown" || k === " " || k === "PageDown" || k === "n") go(cur + 1);
    else if (k === "ArrowLeft" || k === "ArrowUp" || k === "PageUp" || k === "p") go(cur - 1);
    else if (k === "Home") go(0);
    else if (k === "End") go(steps.length - 1);
    else return;
    e.preventDefault();
  });
  var m = /^#step-(\d+)$/.exec(location.hash);
  window.numcnnPage = { steps: steps.length, go: function (k) { go(k); return cur; },
                        current: function () { return cur; } };
  go(m ? +m[1] - 1 : 0);
})();
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>__STYLE__</style>
</head>
<body>
<header><h1>__TITLE__</h1><p>__SUBTITLE__</p></header>
<div id="wrap">
<nav><div class="bar"><button id="prev" type="button">◀ Previous</button>
<button id="next" type="button">Next ▶</button></div>
<div id="counter"></div>
<ol id="stages"></ol>
<div class="key">keys: → ← (Space, PageUp/PageDown), Home, End
<div><span style="background:#bbdefb"></span>read by this step</div>
<div><span style="background:#ffe0b2;outline:2px solid #e65100"></span>produced by this step</div>
<div><span style="background:#ffcdd2"></span>padding added by the remainder r</div>
<div><span style="background:#ffe082"></span>maximum / where a gradient goes</div></div>
</nav>
<main>
<h2 id="title"></h2>
<pre class="lines" id="lines"></pre>
<div id="cell"></div>
<div id="arrays"></div>
<noscript>This page needs JavaScript (inline only; it loads nothing).</noscript>
</main>
</div>
<script type="application/json" id="page-data">__DATA__</script>
<script>__SCRIPT__</script>
</body>
</html>
"""


def render_page(data: PageData) -> str:
    """The page as one string; ``data`` from :func:`numcnn.explain.page.page_data`."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("</", "<\\/")        # no "</script>" inside the data element
    subtitle = f"{data['layer']} on input {tuple(data['input'])}; every number computed by " \
               f"numcnn's kernels"
    return (TEMPLATE.replace("__STYLE__", STYLE).replace("__SCRIPT__", SCRIPT)
            .replace("__TITLE__", html.escape(data["title"]))
            .replace("__SUBTITLE__", html.escape(subtitle))
            .replace("__DATA__", payload))


def write_page(data: PageData, path: str | os.PathLike[str]) -> Path:
    """Write the page to ``path`` atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    text = render_page(data).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
