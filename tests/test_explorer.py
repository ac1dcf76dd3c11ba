"""The results explorer (``figures/<preset>/explorer.html``, ``grokking.report.explorer``): what it shows,
that it carries the grid files' values exactly, its size against the budget, and the smoke build's page in
a real headless browser (Chromium through its driver): a click on a grid cell shows that cell's curves as
the grid file holds them, with no network request and no console error, and a screenshot is kept.

The smoke build is the session's shared one (tests/conftest.py). The browser is Debian's ``chromium`` with
``chromium-driver`` (``make test`` installs them where it runs as root); ``CHROMIUM`` and ``CHROMEDRIVER``
name another Chrome and its driver.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_snakemake

from grokking.config import enabled_figures, figure_grids, figure_runs, load_preset
from grokking.phases import PHASES
from grokking.report import explorer_data, explorer_size
from grokking.report.claims import CLAIMS

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

ROOT = Path(__file__).resolve().parents[1]
INSTALL = (
    "install Debian's chromium and chromium-driver (as root: apt-get update && apt-get install -y chromium "
    "chromium-driver; `make test` does so where it runs as root), or name a Chrome and its matching driver "
    "with CHROMIUM=... CHROMEDRIVER=..."
)


# --- what the page shows and how it carries it ------------------------------------------------------
def test_contents_follow_the_config():
    cfg = load_preset(ROOT / "config", "smoke")
    what = explorer_data.contents(cfg)
    figs = enabled_figures(cfg)
    assert set(what["grids"]) == {g for f in figs for g in figure_grids(cfg, f).values()}
    assert set(what["pruning"]) == {
        r for f in figs if cfg["figures"][f].get("pruning") for r in figure_runs(cfg, f).values()
    }
    assert what["grids"]["wd"] == ["Fig 3", "Fig 24"] and what["runs"]["r1_wd0"][:2] == ["Fig 1", "Fig 4"]
    assert what["width_sweep"] == ["Fig 32"]
    # a disabled figure takes its grid and runs with it; a run that no figure uses is shown
    cfg2 = copy.deepcopy(cfg)
    cfg2["figures"]["fig31"]["enabled"] = False
    cfg2["figures"]["fig08"]["enabled"] = False
    cfg2["figures"]["fig32"]["enabled"] = False
    cfg2["runs"]["extra"] = {}
    what2 = explorer_data.contents(cfg2)
    assert "mul_wd" not in what2["grids"] and "r5_wd20" not in what2["runs"] and what2["width_sweep"] == []
    assert what2["runs"]["extra"] == []


def test_the_workflow_imports_of_the_explorer_stay_light():
    """explorer.smk imports explorer_data: no torch (the DAG of the paper preset is read in seconds) and no
    plotly."""
    code = "import sys; import grokking.report.explorer_data; print(sorted({'torch', 'plotly'} & set(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"


def embedded(text: str) -> tuple[dict, bytes]:
    """The page's manifest (JSON) and its inflated buffer of grid-cell values."""
    manifest = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', text, re.S)
    cells = re.search(r'<script type="application/octet-stream" id="explorer-cells">(.*?)</script>', text, re.S)
    assert manifest and cells, "the page has no data scripts"
    return json.loads(manifest.group(1)), zlib.decompress(base64.b64decode(cells.group(1)))


def array(buffer: bytes, ref: dict) -> np.ndarray:
    dtype = {"f4": "<f4", "i4": "<i4"}[ref["dtype"]]
    return np.frombuffer(buffer, dtype=dtype, count=ref["length"], offset=ref["offset"])


@pytest.fixture(scope="module")
def smoke_page(smoke_build) -> Path:
    return smoke_build / "figures" / "smoke" / "explorer.html"


def test_the_page_carries_every_grid_exactly(smoke_build, smoke_page):
    """Every grid of the preset, every cell: phases, curves and steps equal to the grid file's (float32 as
    stored), final values and IPR quantiles as computed from it."""
    from grokking import load_grid

    manifest, buffer = embedded(smoke_page.read_text(encoding="utf-8"))
    cfg = load_preset(smoke_build / "config", "smoke")
    assert [g["name"] for g in manifest["grids"]] == list(explorer_data.contents(cfg)["grids"])
    for view in manifest["grids"]:
        g = load_grid(smoke_build / "results" / "smoke" / "grids" / f"{view['name']}.npz")
        P, X, A = g["phase"].shape
        T = g["steps"].shape[-1]
        assert (len(view["panel_names"]), len(view["xis"]), len(view["alphas"]), view["points"]) == (P, X, A, T)
        assert np.array_equal(array(buffer, view["phase"]).reshape(P, X, A), g["phase"])
        assert np.array_equal(array(buffer, view["steps"]).reshape(P, A, T), g["steps"])
        curves = array(buffer, view["curves"]).reshape(P, X, A, len(view["metrics"]), T)
        assert set(explorer_data.CURVES) <= set(view["metrics"])
        for m, key in enumerate(view["metrics"]):
            assert np.array_equal(curves[:, :, :, m], g[f"curve_{key}"], equal_nan=True), (view["name"], key)
        finals = array(buffer, view["finals"]).reshape(P, X, A, -1)
        for k, key in enumerate(explorer_data.FINALS):
            assert np.array_equal(finals[..., k], g[key].astype(np.float32), equal_nan=True), (view["name"], key)
        median = np.nanmedian(g["neuron_ipr"], axis=-1).astype(np.float32)
        quantiles = array(buffer, view["ipr"]).reshape(P, X, A, -1)
        assert np.allclose(quantiles[..., explorer_data.IPR_QUANTILES.index(0.5)], median, rtol=1e-6, equal_nan=True)
        assert set(view["kept"]) == {c["key"] for c in json.loads(g["kept_cells"])}
        assert len(view["heatmaps"]) == P


def test_claims_link_to_the_views_of_their_evidence(smoke_page):
    """Each claim's row links to the grids (at the panel its arguments name), runs, pruning sweeps and width
    sweep it reads."""
    text = smoke_page.read_text(encoding="utf-8")
    manifest, _ = embedded(text)
    panels = {g["name"]: g["panels"] for g in manifest["grids"]}
    claims = json.loads((smoke_page.parents[2] / "results" / "smoke" / "claims.json").read_text())["claims"]
    by_id = {c.id: c for c in CLAIMS}
    for row in claims:
        m = re.search(rf"<tr id='claim-{re.escape(row['id'])}'>(.*?)</tr>", text, re.S)
        assert m, row["id"]
        hrefs = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', m.group(1))]
        claim = by_id[row["id"]]
        args = dict(claim.args)
        for grid in claim.grids:
            ours = [h for h in hrefs if h.startswith(f"#view=grids&grid={grid}&")]
            assert ours, (row["id"], grid, hrefs)
            if isinstance(args.get("panel"), int | float) and args.get("grid") == grid:
                assert f"&panel={panels[grid].index(float(args['panel']))}" in ours[0], (row["id"], ours)
        assert {f"#view=runs&run={r}" for r in claim.runs} <= set(hrefs), row["id"]
        assert {f"#view=pruning&run={r}" for r in claim.pruning} <= set(hrefs), row["id"]
        assert ("#view=width" in hrefs) == claim.width_sweep, row["id"]


def test_the_page_refers_to_nothing_outside_itself(smoke_page):
    """No script, style, image or frame from elsewhere: plotly.js is inline (its own source names web
    addresses in strings, which the browser test shows are never fetched)."""
    text = smoke_page.read_text(encoding="utf-8")
    tags = re.findall(r"<(script|link|img|iframe|style)\b([^>]*)>", text)
    assert len(tags) >= 5
    for tag, attrs in tags:
        for key, value in re.findall(r'\b(src|href)="([^"]*)"', attrs):
            assert value.startswith("data:"), (tag, key, value)


# --- the size budget --------------------------------------------------------------------------------
def test_the_paper_presets_page_meets_its_size_budget():
    """The estimate (a page of random values in the shapes the config gives: grids of panels x xi x alpha
    with their curve points, runs, pruning, width sweep, claims) of the paper preset is within the budget."""
    sizes = {p: explorer_size.size_estimate(load_preset(ROOT / "config", p)) for p in ("smoke", "quick", "paper")}
    print("explorer size estimates (MiB): " + ", ".join(f"{p} {s / 2**20:.1f}" for p, s in sizes.items()))
    assert sizes["paper"] <= explorer_size.SIZE_BUDGET, f"{sizes['paper'] / 2**20:.1f} MiB"
    assert sizes["smoke"] < sizes["quick"] < sizes["paper"]  # the estimate grows with the grids


def test_the_estimate_bounds_the_built_page(smoke_build, smoke_page):
    """The estimate is at least the real page's size, and has its shapes."""
    cfg = load_preset(smoke_build / "config", "smoke")
    size = smoke_page.stat().st_size
    estimate = explorer_size.size_estimate(cfg)
    print(f"smoke explorer: {size / 2**20:.2f} MiB, estimate {estimate / 2**20:.2f} MiB")
    assert size <= estimate
    fake = explorer_size.synthetic(cfg)
    manifest, _ = embedded(smoke_page.read_text(encoding="utf-8"))
    for real, made in zip(manifest["grids"], fake["grids"], strict=True):
        assert real["name"] == made["name"] and real["points"] == made["curves"].shape[-1]
        assert real["curves"]["length"] == made["curves"].size and real["finals"]["length"] == made["finals"].size
        assert set(real["kept"]) == set(made["kept"])


# --- the page in a browser ---------------------------------------------------------------------------
def _executable(env: str, names: tuple) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    return next((shutil.which(n) for n in names if shutil.which(n)), None)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = _executable("CHROMIUM", ("chromium", "chromium-browser"))
    driver_path = _executable("CHROMEDRIVER", ("chromedriver",))
    if not (binary and driver_path and Path(binary).exists() and Path(driver_path).exists()):
        pytest.fail(f"the explorer's browser test found no browser ({binary}) or driver ({driver_path}): {INSTALL}")
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless",
        "--no-sandbox",  # as root (CI)
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def requests_made(driver) -> list[str]:
    """Every URL that a page asked for since the last call (DevTools network events of the performance log),
    leaving out the browser's own pages (its new-tab page loads chrome:// resources at start)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if str(params.get("documentURL", "")).startswith(("chrome:", "chrome-untrusted:")):
            continue
        if message["method"] == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif message["method"] in ("Network.webSocketCreated", "Network.webTransportCreated"):
            urls.append(params["url"])
    return urls


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def network_requests(urls: list[str], page_url: str) -> list[str]:
    """The requests beyond the page itself and the data: and blob: URLs it makes from its own content."""
    return [u for u in urls if u.split("#")[0] != page_url and not u.startswith(("data:", "blob:"))]


def open_page(driver, url: str):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    ready = "return document.body.dataset.ready === '1' || document.getElementById('status').textContent"
    state = WebDriverWait(driver, 120).until(lambda d: d.execute_script(ready))
    assert state is True, f"the explorer did not start: {state}"


def wait_for(driver, script: str, expected):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: d.execute_script(script) == expected)


def keep_screenshot(driver, path: Path):
    """The page as shown, in the test's directory (its path printed) and, where EXPLORER_SCREENSHOTS names a
    directory, there too (pytest keeps only its last few temporary directories)."""
    driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"explorer screenshot: {path}")
    if os.environ.get("EXPLORER_SCREENSHOTS"):
        Path(os.environ["EXPLORER_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        print(f"explorer screenshot: {shutil.copy(path, os.environ['EXPLORER_SCREENSHOTS'])}")


def test_the_detectors_see_a_request_and_a_console_error(browser, tmp_path):
    """The network and console checks below can fail: a page that loads an image from a (closed) local port
    and logs an error is caught by both."""
    page = tmp_path / "control.html"
    page.write_text('<img src="http://127.0.0.1:9/x.png"><script>console.error("deliberate")</script>')
    browser.get(page.as_uri())
    browser.execute_script("return document.readyState")
    assert "http://127.0.0.1:9/x.png" in network_requests(requests_made(browser), page.as_uri())
    assert any("deliberate" in m for m in console_errors(browser))


def test_clicking_a_cell_shows_its_curves(browser, smoke_build, smoke_page, tmp_path):
    """Open the smoke build's page from disk, choose the grid and panel with the selectors, hover a cell (its
    accuracies and phase), click it: the curves drawn are that cell's in the grid file, and the page made no
    network request and logged no error. The screenshot is kept in this test's directory."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from grokking import load_grid

    url = smoke_page.resolve().as_uri()
    open_page(browser, url)
    name = "wd"
    g = load_grid(smoke_build / "results" / "smoke" / "grids" / f"{name}.npz")
    P, X, A = g["phase"].shape
    p, xi, a = P - 1, X - 1, A - 1  # not the first of anything: a page that showed the default cell fails
    others = [g["curve_test_acc"][p2, x2, a2] for p2 in range(P) for x2 in range(X) for a2 in range(A)]
    assert sum(np.array_equal(c, g["curve_test_acc"][p, xi, a], equal_nan=True) for c in others) == 1

    Select(browser.find_element(By.ID, "grid-select")).select_by_value(name)
    wait_for(browser, "return document.getElementById('heatmap').dataset.grid", name)
    Select(browser.find_element(By.ID, "panel-select")).select_by_value(str(p))
    wait_for(browser, "return document.getElementById('heatmap').dataset.panel", str(p))
    heatmap = browser.find_element(By.ID, "heatmap")
    # where the cell's centre is drawn, from the plot's own axes (relative to the plot's top left corner)
    x, y, width, height = browser.execute_script(
        "const gd = arguments[0], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;"
        "return [xa._offset + xa.l2p(arguments[1]), ya._offset + ya.l2p(arguments[2]), gd.clientWidth,"
        " gd.clientHeight];",
        heatmap,
        float(g["train_fractions"][a]),
        float(g["corruptions"][xi]),
    )
    ActionChains(browser).move_to_element_with_offset(heatmap, int(x - width / 2), int(y - height / 2)).perform()
    hover_js = "const h = document.querySelector('#heatmap .hoverlayer .hovertext'); return h ? h.textContent : ''"
    from selenium.webdriver.support.ui import WebDriverWait

    hover = WebDriverWait(browser, 30).until(lambda d: d.execute_script(hover_js))
    phase = PHASES[int(g["phase"][p, xi, a])]
    assert phase in hover and f"train {100 * g['train_acc'][p, xi, a]:.1f}%" in hover, hover
    assert f"test {100 * g['test_acc'][p, xi, a]:.1f}%" in hover, hover
    ActionChains(browser).click().perform()
    wait_for(browser, "return document.getElementById('cell-curves').dataset.cell", f"{name}/{p}/{xi}/{a}")

    shown = browser.execute_script(
        "return document.getElementById('cell-curves').data"
        ".map(t => ({meta: t.meta, x: Array.from(t.x), y: Array.from(t.y, v => Number.isNaN(v) ? null : v)}))"
    )
    assert {t["meta"] for t in shown} >= set(explorer_data.CURVES)
    for trace in shown:
        y = np.array([np.nan if v is None else v for v in trace["y"]], dtype=np.float64)
        expected = g[f"curve_{trace['meta']}"][p, xi, a].astype(np.float64)
        assert np.array_equal(y, expected, equal_nan=True), trace["meta"]
        assert trace["x"] == g["steps"][p, a].tolist(), trace["meta"]
    assert browser.find_element(By.ID, "cell-title").text.endswith(phase)

    keep_screenshot(browser, tmp_path / "explorer_cell.png")
    assert network_requests(requests_made(browser), url) == []
    assert console_errors(browser) == []


def test_a_claim_link_and_a_named_run_in_the_browser(browser, smoke_build, smoke_page, tmp_path):
    """A claim's evidence link opens the grid panel it names; a named run shows its curves from curves.npz
    (float32)."""
    from selenium.webdriver.common.by import By

    from grokking import load_grid, load_run

    url = smoke_page.resolve().as_uri()
    open_page(browser, url + "#view=claims")
    link = browser.find_element(By.CSS_SELECTOR, "#claim-wd20_forgetting a[href^='#view=grids']")
    target = dict(kv.split("=") for kv in link.get_attribute("href").split("#", 1)[1].split("&"))
    panels = load_grid(smoke_build / "results" / "smoke" / "grids" / "wd.npz")["panels"].tolist()
    assert target == {"view": "grids", "grid": "wd", "panel": str(panels.index(20.0))}  # the claim's wd 20 panel
    link.click()
    wait_for(browser, "return document.body.dataset.view", "grids")
    wait_for(browser, "return document.getElementById('heatmap').dataset.panel", target["panel"])
    assert browser.execute_script("return document.getElementById('heatmap').dataset.grid") == target["grid"]

    browser.execute_script("location.hash = 'view=runs&run=r3_wd15'")
    wait_for(browser, "return document.getElementById('run-curves').dataset.run", "r3_wd15")
    run = load_run(smoke_build / "results" / "smoke" / "runs" / "r3_wd15")
    shown = browser.execute_script(
        "return document.getElementById('run-curves')._fullData.map(t => ({meta: t.meta, y: Array.from(t.y)}))"
    )
    for trace in shown:
        y = np.array([np.nan if v is None else v for v in trace["y"]], dtype=np.float64)
        expected = run.curves[trace["meta"]].astype(np.float32).astype(np.float64)
        assert np.array_equal(y, expected, equal_nan=True), trace["meta"]
    keep_screenshot(browser, tmp_path / "explorer_run.png")
    assert network_requests(requests_made(browser), url) == []
    assert console_errors(browser) == []


# --- the Snakemake report ------------------------------------------------------------------------------
def test_the_snakemake_report_holds_the_explorer(smoke_build, smoke_page, tmp_path):
    out = tmp_path / "report.html"
    res = run_snakemake(smoke_build, "--report", str(out), "--configfile", "config/smoke.yaml", timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    page = out.read_text(encoding="utf-8")
    m = re.search(r'<script id="results">\s*var \w+ = (.*?);\s*</script>', page, re.S)
    results = json.loads(m.group(1))
    pages = [r for r in results.values() if r["filename"] == "explorer.html"]
    assert len(pages) == 1, sorted(r["filename"] for r in results.values())
    payload = pages[0]["data_uri"].partition(",")[2]
    assert base64.b64decode(payload) == smoke_page.read_bytes()
