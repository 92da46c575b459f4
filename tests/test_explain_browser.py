"""The interactive explain pages in a real browser: headless Chromium driven by Selenium.

Each page is opened from ``file://``; the test checks that the browser logs no error and makes
no network request, steps through every step with the Next button (and the keyboard), reads
the numbers the page shows for Y, gW and gX and compares them with numcnn's arrays, and saves a
screenshot of every stage (into ``$NUMCNN_SCREENSHOTS`` when set, else a temporary folder).

Needs ``selenium`` (the ``browser-test`` extra) and Chromium with its driver (Debian:
``apt-get install chromium chromium-driver``; ``make browser-test`` installs both); skipped
with the reason otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from numcnn.explain import explain_page, one_layer
from numcnn.explain.examples import PAGES
from numcnn.explain.values import layer_values

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install 'numcnn[browser-test]')")
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium and chromedriver are needed (Debian: apt-get install chromium "
           "chromium-driver, or make browser-test)")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")

READ = """
return Array.from(document.querySelectorAll('td[data-a="' + arguments[0] + '"]')).map(
  function (td) { return [+td.dataset.g, +td.dataset.i, +td.dataset.j, td.textContent,
                          td.className]; });
"""

#: What one step shows: counter, title, the cell's sentence and the cells of some arrays.
STATE = """
var terms = document.querySelector('#cell .terms'), arrays = {};
arguments[0].forEach(function (name) {
  arrays[name] = Array.from(document.querySelectorAll('td[data-a="' + name + '"]')).map(
    function (td) { return [+td.dataset.g, +td.dataset.i, +td.dataset.j, td.textContent,
                            td.className]; });
});
return {counter: document.getElementById('counter').textContent,
        title: document.getElementById('title').textContent,
        terms: terms ? terms.textContent : null, arrays: arrays};
"""


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="numcnn-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("NUMCNN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def page_steps(data: dict) -> list[tuple[int, int]]:
    """(stage, cell) of every step, as the page numbers them (an intro step, then the cells)."""
    return [(si, ci) for si, s in enumerate(data["stages"]) for ci in range(-1, len(s["cells"]))]


def number(text: str) -> float:
    return float(text.replace("−∞", "-inf").replace("−", "-"))


def as_array(cells, name: str, shape) -> np.ndarray:
    """The array ``name`` as the page shows it (every cell must be visible and filled)."""
    out = np.full(shape, np.nan)
    for g, i, j, text, cls in cells:
        assert "pending" not in cls, f"{name}[{g}, {i}, {j}] still hidden"
        out[g, i, j] = number(text)
    return out


def network_requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def expected_arrays(data: dict, spec, shape, inputs) -> dict[str, np.ndarray]:
    """numcnn's arrays for the page, stacked the way the page draws them (one grid per slice)."""
    plan, _ = one_layer(spec, shape)
    arrays = layer_values(plan, inputs)[1]
    out = {}
    for name in ("Y", "gW", "gX", "gX_ins", "Y_pad", "Y_ins"):
        if name in arrays and name in data["arrays"]:
            a = arrays[name] if name == "gW" else arrays[name][0]
            out[name] = a.reshape(-1, *a.shape[-2:])
    return out


def walk(driver, url: str, data: dict, expected: dict, shots: Path, stem: str) -> None:
    driver.get(url)
    driver.get_log("performance")                       # the page load itself, from file://
    steps = page_steps(data)
    counter = driver.find_element(By.ID, "counter")
    assert counter.text == f"step 1 / {len(steps)}"
    nxt = driver.find_element(By.ID, "next")
    checked = set()
    for k, (si, ci) in enumerate(steps):
        if k:
            nxt.click()
        stage = data["stages"][si]
        last = ci == len(stage["cells"]) - 1
        names = [n for n in stage["show"] if n in expected] if last else []
        state = driver.execute_script(STATE, names)
        assert state["counter"] == f"step {k + 1} / {len(steps)}"
        assert state["title"] == f"{si + 1}. {stage['title']}"
        if ci >= 0:                                     # the cell's sentence is on the page
            assert state["terms"] == stage["cells"][ci]["terms"]
        if last:                                        # the stage complete: read its numbers
            driver.save_screenshot(str(shots / f"{stem}-{k + 1:03d}-{stage['id']}.png"))
            for name in names:
                got = as_array(state["arrays"][name], name, expected[name].shape)
                np.testing.assert_allclose(got, expected[name], atol=5e-4, rtol=1e-3,
                                           err_msg=f"{stem}: {name} at step {k + 1}")
                checked.add(name)
    assert nxt.get_attribute("disabled") is not None    # the last step ends the walk
    assert checked == set(expected), f"never read {set(expected) - checked}"
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.HOME)
    assert counter.text == f"step 1 / {len(steps)}"
    body.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_LEFT)
    assert counter.text == f"step 2 / {len(steps)}"
    driver.find_element(By.ID, "next").click()        # focus on the button: Space clicks it,
    driver.switch_to.active_element.send_keys(Keys.SPACE)   # one step, not two
    assert counter.text == f"step 4 / {len(steps)}"
    body.send_keys(Keys.END)
    assert counter.text == f"step {len(steps)} / {len(steps)}"
    driver.find_elements(By.CSS_SELECTOR, "nav li")[1].click()   # the stage list jumps
    assert counter.text == f"step {1 + len(data['stages'][0]['cells']) + 1} / {len(steps)}"
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    assert network_requests(driver) == []


@pytest.mark.parametrize("name", sorted(PAGES))
def test_shipped_page_in_chromium(browser, shots, name):
    spec, shape, inputs, title = PAGES[name]
    data = explain_page(spec, shape, inputs=inputs(), title=title)
    expected = expected_arrays(data, spec, shape, inputs())
    assert {"Y", "gX"} <= set(expected)
    walk(browser, (ROOT / "docs" / "pages" / name).as_uri(), data, expected, shots,
         name.removesuffix(".html"))


def test_generated_page_with_groups_and_dilation_in_chromium(browser, shots, tmp_path):
    spec = "conv2d(4, 2, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)"
    path = tmp_path / "grouped.html"
    data = explain_page(spec, (4, 3, 5), path)
    expected = expected_arrays(data, spec, (4, 3, 5), None)
    assert set(expected) == {"Y", "gW", "gX", "gX_ins"}
    walk(browser, path.as_uri(), data, expected, shots, "grouped")


def test_generated_transposed_conv_page_in_chromium(browser, shots, tmp_path):
    """ConvTranspose2d with groups, dilation and output_padding: the scatter, the stamps' sums,
    the seed's inserted form, gX = conv2d(gY, W) and gW, read from the page."""
    spec = ("convtranspose2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0), "
            "dilation=(1, 2), groups=2)")
    path = tmp_path / "transposed.html"
    data = explain_page(spec, (2, 3, 3), path)
    expected = expected_arrays(data, spec, (2, 3, 3), None)
    assert set(expected) == {"Y", "gW", "gX", "Y_pad", "Y_ins"}
    walk(browser, path.as_uri(), data, expected, shots, "transposed")


def test_a_large_input_shows_a_window_of_the_grid(browser, tmp_path):
    path = tmp_path / "large.html"
    data = explain_page("conv2d(1, 1, 3, padding=1)", (1, 30, 30), path)
    browser.get(path.as_uri() + "#step-390")
    si, ci = page_steps(data)[389]
    _, _, i, j = data["stages"][si]["cells"][ci]["target"]
    assert (si, i, j) == (1, 12, 27)                      # Y[0, 12, 27]: X_pad rows 12..14
    cells = browser.execute_script(READ, "X_pad")
    rows, cols = sorted({c[1] for c in cells}), sorted({c[2] for c in cells})
    assert rows == list(range(6, 20)) and cols == list(range(18, 32))   # 14x14 around it
    marked = browser.execute_script("return document.querySelector('td.target').dataset")
    assert (int(marked["i"]), int(marked["j"])) == (i, j)
