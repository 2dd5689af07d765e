"""JupyterLab in a real browser: notebooks 02 and 06 run in headless Chromium, their
sliders are moved, and the readout and the chart must change.

Uses Debian's chromium (/usr/bin/chromium) through Playwright; browsers cannot be
downloaded here. Screenshots go to test-artifacts/browser/.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import NOTEBOOKS, ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.path.join(ROOT, "test-artifacts", "browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no Chromium at {CHROMIUM}: install Debian's 'chromium' package "
                              f"(apt-get install chromium, as .ci/run does)"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free 127.0.0.1 port with a token, serving a folder that
    holds notebooks 02 and 06 parameterised for a tiny dataset with two built indexes."""
    import papermill as pm

    from helpers.data import dataset, groundtruth, synthetic
    from helpers.index import build

    root = tmp_path_factory.mktemp("lab")
    ds = dataset.generate_dataset(root / "data", 3000, n_queries=40, n_train=0,
                                  params=synthetic.GeneratorParams(d=64, intrinsic_dim=16),
                                  progress=False)
    groundtruth.ground_truth(ds, 20, progress=False)
    build.build_all(ds, ["IVF16,SQ8", "HNSW16,SQ8"], root / "data" / "indexes", n_train=1500,
                    progress=False)
    params = {
        # the real question, 10M x 1024, from the model alone (no measurement, no timing)
        "02_memory_budget.ipynb": dict(data_dir=str(root / "data"), check_factories=[],
                                       time_builds=False),
        "06_recall_vs_latency.ipynb": dict(data_dir=str(root / "data"),
                                           index_dir=str(root / "data" / "indexes"), gt_k=20,
                                           target_recall=0.5, repeats=1, single_queries=5),
    }
    for name, p in params.items():  # inject the parameters without executing
        pm.execute_notebook(os.path.join(NOTEBOOKS, name), str(root / name), parameters=p,
                            prepare_only=True)
    port, token = free_port(), secrets.token_hex(16)
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.port_retries=0", "--allow-root", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + open(root / "lab.log").read())
                time.sleep(0.5)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # only this run's screenshots
    os.makedirs(ARTIFACTS)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    """A browser page; on failure its screenshot is kept as an artifact."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else True:
        page.screenshot(path=os.path.join(ARTIFACTS, f"{request.node.name}-failed.png"),
                        full_page=True)
    page.close()


def open_and_run_all(page, lab, name):
    url, token = lab
    # a workspace of its own, reset, so tabs from another test are not restored beside it
    page.goto(f"{url}/lab/workspaces/{name[:2]}/tree/{name}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
    started = "() => [...document.querySelectorAll('.jp-InputArea-prompt')].some(p => /\\d|\\*/.test(p.innerText))"
    for attempt in range(3):  # a Run All sent while the kernel is still connecting is dropped
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(started, timeout=10_000)
            return page
        except Exception:
            continue
    raise AssertionError("JupyterLab did not start running the notebook")


def wait_for_kernel_idle(page, timeout=180_000):
    page.wait_for_timeout(500)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout)


def set_slider(page, slider, value):
    """Type a value into an ipywidgets slider's editable readout, as a person can."""
    readout = slider.locator(".widget-readout")
    readout.fill(str(value))
    readout.press("Enter")


def no_errors(page):
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                          ":has-text('Traceback')")
    assert errors.count() == 0, errors.first.inner_text()


@pytest.mark.timeout(600)  # JupyterLab, a tiny run and a whole notebook: beyond 300 s per test
def test_06_sliders_move_the_operating_point(page, lab):
    open_and_run_all(page, lab, "06_recall_vs_latency.ipynb")
    page.wait_for_selector(".jp-OutputArea-output select", timeout=180_000)
    wait_for_kernel_idle(page)  # the cells after the widget set the sliders programmatically
    explorer = page.locator(".jp-OutputArea-output:has(select)").first
    explorer.scroll_into_view_if_needed()
    page.wait_for_selector(".js-plotly-plot .scatterlayer", timeout=60_000)
    no_errors(page)
    readout = explorer.locator(".widget-html").first
    chart = explorer.locator(".js-plotly-plot").first

    def star():
        return chart.evaluate("gd => JSON.stringify(gd.data[gd.data.length - 1].x)")

    page.screenshot(path=os.path.join(ARTIFACTS, "06_before.png"), full_page=False)
    sliders = explorer.locator(".widget-slider")
    for index, slider, value, shown in [("IVF16,SQ8", 0, 1, "nprobe=1"),
                                        ("HNSW16,SQ8", 1, 16, "efSearch=16")]:
        explorer.locator("select").select_option(index)
        page.wait_for_function("([el, name]) => el.innerText.includes(name)",
                               arg=[readout.element_handle(), index], timeout=30_000)
        before = (readout.inner_text(), star())
        set_slider(page, sliders.nth(slider), value)
        page.wait_for_function("([el, old, shown]) => el.innerText !== old && el.innerText.includes(shown)",
                               arg=[readout.element_handle(), before[0], shown], timeout=30_000)
        assert star() != before[1], f"the operating point did not move with {shown}"
        page.screenshot(path=os.path.join(ARTIFACTS, f"06_{shown.split('=')[0]}.png"))


@pytest.mark.timeout(600)  # JupyterLab, a tiny run and a whole notebook: beyond 300 s per test
def test_02_ram_budget_control_updates_the_table(page, lab):
    open_and_run_all(page, lab, "02_memory_budget.ipynb")
    page.wait_for_selector(".jp-OutputArea-output .widget-slider", timeout=180_000)
    wait_for_kernel_idle(page)
    explorer = page.locator(".jp-OutputArea-output:has(.widget-slider)").first
    explorer.scroll_into_view_if_needed()
    no_errors(page)
    table = explorer.locator(".widget-html").first
    before = table.inner_text()
    page.screenshot(path=os.path.join(ARTIFACTS, "02_before.png"))
    set_slider(page, explorer.locator(".widget-slider").first, 0.001)
    page.wait_for_function("([el, old]) => el.innerText !== old", arg=[table.element_handle(), before],
                           timeout=30_000)
    after = table.inner_text()
    assert after.count("\tno\t") > before.count("\tno\t"), "a smaller budget should refuse more"
    page.screenshot(path=os.path.join(ARTIFACTS, "02_after.png"))
