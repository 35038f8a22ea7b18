"""`dvc plots show` offline: real DVC writes its page from the committed eval/*.csv through the page
template that .dvc/config names (mnist_dvc/app/plots_template.py), and a headless Chromium that may
load nothing but file:// URLs opens it. Every vega chart must draw, every picture show, and no
request leave the machine; DVC's own page, made in the same project with the setting removed, must
fail, which shows that the checks catch charts that need the network."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
# The vega charts of dvc.yaml, by the div id DVC gives each (its title or path, most punctuation as "_").
CHARTS = {"Digits_per_split", "Accuracy", "Loss", "F1_per_digit_on_the_test_set",
          "Reliability_on_the_test_set__raw_and_temperature-scaled_", "eval_confusion_csv"}
# A chart has drawn when its div holds an <svg> or <canvas> of nonzero size (vega-embed draws on a canvas by default).
DRAWN = """id => [...document.getElementById(id).querySelectorAll('svg, canvas')]
                   .some(drawing => drawing.getBoundingClientRect().width > 0 && drawing.getBoundingClientRect().height > 0)"""


@pytest.fixture(scope="module")
def pages(make_project, stage_env, tmp_path_factory) -> dict[str, Path]:
    """index.html of `dvc plots show` with the project's template ("offline") and, after
    `dvc config --unset plots.html_template`, with DVC's own page ("default").

    The copy has the committed eval/ but none of data/, so it goes without dvc.lock: the lock's
    hashes of data/'s folders send DVC to a cache the copy lacks, and `dvc plots show` then shows
    nothing at all. Each picture plot of dvc.yaml (a file, or a folder of them) gets a small PNG."""
    root = make_project(tmp_path_factory.mktemp("offline_plots") / "project", git=True)
    (root / "dvc.lock").unlink()
    for plot in yaml.safe_load((root / "dvc.yaml").read_text())["plots"]:
        if isinstance(plot, str):
            picture = root / plot if plot.endswith(".png") else root / plot / "picture.png"
            picture.parent.mkdir(parents=True, exist_ok=True)
            Image.new("L", (60, 40), 128).save(picture)

    def dvc(*args: str) -> str:
        result = subprocess.run(["dvc", *args], cwd=root, env=stage_env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"`dvc {' '.join(args)}` exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        return result.stdout

    found = {}
    for name in ("offline", "default"):
        if name == "default":
            dvc("config", "--unset", "plots.html_template")
        output = dvc("plots", "show", "-o", str(root / name))
        found[name] = root / name / "index.html"
        assert found[name].as_uri() in output
    return found


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}; install it with `apt-get install -y --no-install-recommends chromium` (as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000)
        yield chromium
        chromium.close()


def open_offline(browser, page: Path, wait_ms: int = 20_000) -> dict:
    """Opens `page` with every request but file:// aborted and waits up to `wait_ms` for its charts;
    returns the ids of its vega charts, which of them drew, whether each picture loaded, every request that was not file://, and the page's
    script errors and console errors. Warnings are left out: vega-embed warns that DVC's vega-lite 5
    specs meet vega 6, and vega-lite about DVC's own templates (an empty hover layer)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    seen = {"blocked": [], "errors": []}

    def route(request_route):
        if request_route.request.url.startswith("file://"):
            request_route.continue_()
        else:
            seen["blocked"].append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    tab.on("pageerror", lambda error: seen["errors"].append(f"script error: {error}"))
    tab.on("console", lambda message: message.type == "error" and seen["errors"].append(message.text))
    tab.goto(page.as_uri(), wait_until="load")
    charts = re.findall(r"vegaEmbed\('#([^']+)'", page.read_text(encoding="utf-8"))
    try:
        tab.wait_for_function(f"ids => ids.every({DRAWN})", arg=charts, timeout=wait_ms)
    except PlaywrightTimeout:  # the charts that did not draw are named below
        pass
    drawn = {chart for chart in charts if tab.evaluate(DRAWN, chart)}
    pictures = tab.evaluate("[...document.images].map(image => image.complete && image.naturalWidth > 0)")
    context.close()
    return {"charts": charts, "drawn": drawn, "pictures": pictures, **seen}


def test_every_chart_draws_with_the_network_blocked_and_nothing_is_requested(pages, browser):
    html = pages["offline"].read_text(encoding="utf-8")
    assert "Generated by `python -m mnist_dvc.app.plots_template`" in html  # .dvc/config's template, not DVC's page
    assert re.search(r"<script[^>]*\ssrc=", html) is None  # every script inline
    opened = open_offline(browser, pages["offline"])
    assert CHARTS <= set(opened["charts"])
    assert opened["drawn"] == set(opened["charts"]), f"not drawn: {sorted(set(opened['charts']) - opened['drawn'])}; {opened['errors']}"
    assert opened["pictures"] and all(opened["pictures"])
    assert opened["blocked"] == []
    assert opened["errors"] == []


def test_dvcs_own_page_asks_the_cdn_and_draws_nothing_offline(pages, browser):
    opened = open_offline(browser, pages["default"], wait_ms=1_000)  # its chart scripts fail as the page loads
    assert CHARTS <= set(opened["charts"])
    assert opened["drawn"] == set()
    assert opened["errors"].count("script error: vegaEmbed is not defined") == len(opened["charts"])
    assert any(url.startswith("https://cdn.jsdelivr.net/npm/vega") for url in opened["blocked"]), opened["blocked"]
