"""The dashboard in a real browser: Playwright driving Debian's chromium (headless).

The test starts ``sim dash`` on a free port, opens the page once and plays a strategist's session:
the page loads with its controls, a run completes and draws its curves, moving a slider changes the
result, and a bad value shows the one-line error on the page (never a traceback). Each test starts
from "Reset to scenario" on a small market, so they do not depend on each other's order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile

import pytest

from sim.dashboard.server import free_port
from sim.mechanisms import REGISTRY

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
MARKET = {"population.size": "3000", "horizon": "90"}

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("chromium is missing: .ci/run installs it (apt-get install chromium)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "dash", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180  # generous: a loaded CI machine starts Solara slowly
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"sim dash did not start: {proc.stdout.read()}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
        pg = context.new_page()
        pg.set_default_timeout(180_000)  # a wait, not a timing: runs are slow on a loaded machine
        pg.goto(server)
        pg.wait_for_selector("text=Mechanisms")
        yield pg
        browser.close()


def field(page, key: str):
    return page.locator(f".knob-{key} .knob-field input")


def type_into(page, key: str, text: str, expect: str | None = None) -> None:
    """Type a value and press Enter; with ``expect``, wait until the page lists that override
    (typing again if a redraw of the controls swallowed the keystrokes)."""
    for _ in range(3):
        box = field(page, key)
        box.fill(text)
        box.press("Enter")
        if expect is None:
            return
        try:
            page.wait_for_function("(s) => (document.querySelector('.pending-overrides') || {}).textContent?.split(' ').includes(s)",
                                   arg=expect, timeout=10_000)
            return
        except playwright.TimeoutError:
            continue
    raise AssertionError(f"the page did not take {key} = {text}")


def type_until_shown(page, key: str, text: str, shown: str) -> None:
    """Type a value and press Enter until the page shows ``shown`` (typing again if a redraw of the
    controls swallowed the keystrokes)."""
    for _ in range(3):
        type_into(page, key, text)
        try:
            page.wait_for_function("(s) => document.body.textContent.includes(s)", arg=shown, timeout=20_000)
            return
        except playwright.TimeoutError:
            continue
    raise AssertionError(f"the page did not show {shown!r} after {key} = {text}")


def small_market(page, market: dict[str, str] = MARKET) -> None:
    """Back to the scenario, on a market small enough to simulate in a moment."""
    page.locator(".reset-button").click()
    page.wait_for_function("() => document.querySelector('.knob-population-size .knob-field input').value === '20000'")
    for key, value in market.items():
        type_into(page, key.replace(".", "-"), value, expect=f"{key}={value}")


def finished_run(page, command_contains: str):
    """Wait until the latest run is complete and its command contains ``command_contains``."""
    try:
        page.wait_for_function("(s) => { const c = document.querySelector('.run-command'); return c && c.textContent.includes(s); }",
                               arg=command_contains)
    except playwright.TimeoutError:
        page.screenshot(path=os.environ.get("SIM_DASH_FAILURE_PNG", "/tmp/sim-dash-failure.png"), full_page=True)
        raise
    return page.locator(".run-command").inner_text()


def kpi(page, name: str) -> int:
    return int(re.sub(r"[^0-9-]", "", page.locator(f".kpi-{name} b").inner_text()))


def test_the_page_loads_with_a_scenario_and_controls_that_show_units_and_ranges(page):
    body = page.locator("body").inner_text()
    assert "growth-sim" in body and "default" in body
    reward = page.locator(".knob-mechanisms-referral-inviter_reward")
    assert "(RMB per accepted invite)" in reward.inner_text() and "allowed 0 – 10,000" in reward.inner_text()
    assert "population size (people)" in page.locator(".knob-population-size").inner_text()
    from sim.config import scenario_description

    assert scenario_description("default") in body  # the scenario says what it is, from its file
    for name in REGISTRY:  # every registered mechanism has its panel
        assert name.replace("_", " ") in body


def test_a_run_completes_and_draws_its_curves(page):
    small_market(page)
    page.locator(".run-button").click()
    command = finished_run(page, "horizon=90")
    assert command == "sim run scenario=default population.size=3000 horizon=90"
    assert "day 90 of 90" in page.locator(".run-status-done").inner_text()
    assert kpi(page, "users") > 0
    # The growth chart's canvas holds the "users now" curve: pixels of its colour (#1f5fa8). The chart
    # mounts and animates after the run's status says done: wait for the curve, then count.
    curve_pixels = """() => {
        const canvas = document.querySelector('.chart-growth canvas');
        if (!canvas) return 0;
        const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (Math.abs(d[i] - 0x1f) < 30 && Math.abs(d[i+1] - 0x5f) < 30 && Math.abs(d[i+2] - 0xa8) < 30 && d[i+3] > 200) n++;
        return n;
    }"""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"() => ({curve_pixels})() > 200", timeout=60_000)
    except PlaywrightTimeout:
        pass  # the assertion below says how many pixels there were
    drawn = page.evaluate(curve_pixels)
    assert drawn > 200, f"only {drawn} pixels of the curve's colour"


def test_the_command_copies_and_the_run_folder_downloads(page, tmp_path):
    small_market(page)
    page.locator(".run-button").click()
    command = finished_run(page, "horizon=90")
    page.locator(".copy-button").first.click()
    page.wait_for_function("(c) => navigator.clipboard.readText().then(t => t === c)", arg=command)
    with page.expect_download() as download:
        page.get_by_text("Download the run folder").click()
    archive = tmp_path / download.value.suggested_filename
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    from tests.test_end_to_end import assert_complete_run_folder

    assert_complete_run_folder(folder, 90)


def test_two_strategies_compare_side_by_side_with_bands(page):
    small_market(page)
    type_into(page, "mechanisms-referral-inviter_reward", "30", expect="mechanisms.referral.inviter_reward=30")
    page.locator(".v-tab").nth(1).click()
    thumb = page.locator(".replicates .v-slider__thumb-container")
    thumb.focus()
    thumb.press("Home")  # the fewest replicates: 2
    page.locator(".compare-button").click()
    page.locator(".verdict").first.wait_for()
    verdicts = page.locator(".verdict").all_inner_texts()
    # the verdicts of sim compare (sim.analysis): strategy B against the baseline, replicate by replicate
    assert any("on-screen settings" in v and "default on profit" in v and "of 2 replicates" in v for v in verdicts), verdicts
    page.locator(".chart-cmp-users canvas").wait_for()  # the chart mounts after the verdicts
    assert page.locator(".chart-cmp-users canvas").count() == 1
    assert "mechanisms.referral.inviter_reward=30" in page.locator("body").inner_text()
    page.locator(".v-tab").first.click()  # back to the run


def test_the_comparison_decides_shows_the_pnl_and_an_assumption_adds_the_noise_only_interval(page):
    """The compare tab's default question (users at the horizon, keeping profit with terminal value)
    gives the recommendation line and the P&L per strategy; an uncertain assumption added gives each
    difference a second interval (noise only), the per-replicate chart and the flip table."""
    small_market(page, {"population.size": "2000", "horizon": "40"})
    type_into(page, "mechanisms-referral-inviter_reward", "30", expect="mechanisms.referral.inviter_reward=30")
    page.locator(".v-tab").nth(1).click()
    thumb = page.locator(".replicates .v-slider__thumb-container")
    thumb.focus()
    thumb.press("Home")  # 2 replicates
    page.locator(".compare-button").click()
    line = page.locator(".decision-line")
    line.wait_for()
    assert line.inner_text().startswith("recommended: ") and "of 2 replicates" in line.inner_text()
    assert "P(best) of on-screen settings" in page.locator(".decision-p-best").inner_text()
    pnl = page.locator(".compare-pnl").inner_text()
    for label in ("revenue", "− incentive cost", "= contribution", "= profit", "= profit with terminal value"):
        assert label in pnl, label
    assert "noise only" not in pnl and page.locator(".flip-table").count() == 0
    page.locator(".add-assumption").click()
    page.locator(".assumption-0").wait_for()
    page.locator(".compare-button").click()
    page.wait_for_function("() => (document.querySelector('.compare-pnl') || {}).textContent?.includes('noise only')")
    assert "share from assumptions" in page.locator(".compare-pnl").inner_text()
    key = page.locator(".assumption-0 .v-select__selection").first.inner_text().strip()
    assert key and key in page.locator(".flip-table").inner_text()
    page.locator(".chart-cmp-objective canvas").wait_for()
    assert "with every assumption at its centre" in page.locator(".decision-line").inner_text()
    page.locator(".remove-assumption").click()  # leave the tab as the other tests expect it
    page.locator(".assumption-0").wait_for(state="detached")
    page.locator(".v-tab").first.click()


def test_moving_a_slider_changes_the_result(page):
    small_market(page)
    page.locator(".run-button").click()
    finished_run(page, "horizon=90")
    before = kpi(page, "users")
    thumb = page.locator(".knob-mechanisms-referral-inviter_reward .v-slider__thumb-container")
    thumb.focus()
    thumb.press("End")  # the top of the slider: 50 RMB per accepted invite instead of 10
    command = finished_run(page, "mechanisms.referral.inviter_reward=50")
    assert command.endswith("horizon=90 mechanisms.referral.inviter_reward=50")
    assert field(page, "mechanisms-referral-inviter_reward").input_value() == "50"
    assert kpi(page, "users") != before


def test_a_bad_value_shows_the_one_line_error_on_the_page_not_a_traceback(page):
    """A value the schema refuses, typed into a knob, is shown with its one-line error beside the
    field; the knob keeps its last good value, so the page can still run."""
    small_market(page)
    key = "mechanisms-referral-invitee_reward"
    type_until_shown(page, key, "-5", "mechanisms.referral.invitee_reward = -5.0: allowed is a number in [0, 10000] (RMB per accepted invite)")
    assert page.locator(".run-button").is_enabled()
    for text, shown in (("lots", "mechanisms.referral.invitee_reward = 'lots': allowed is a number"),
                        ("nan", "mechanisms.referral.invitee_reward = nan: allowed is a number")):
        type_until_shown(page, key, text, shown)
        assert "Traceback" not in page.locator("body").inner_text()
        assert page.locator(".run-button").is_enabled()


def test_a_market_too_large_for_this_machine_is_refused_on_the_page_not_by_a_crash(page):
    import sim
    from sim.memory import available_bytes, estimate

    huge = 200_000_000  # the schema's largest population
    if estimate(sim.compose("default", [f"population.size={huge}"])).peak_bytes < available_bytes():
        pytest.skip("this machine has the memory for the largest population")
    small_market(page)
    type_into(page, "population-size", str(huge))
    error = page.locator(".config-error")
    error.wait_for()
    page.wait_for_function("() => document.querySelector('.config-error').textContent.includes('this run needs')")
    text = error.inner_text().strip()
    assert text.startswith(f"population.size = {huge:,}: this run needs about") and "memory is available" in text
    assert "\n" not in text and page.locator(".run-button").is_disabled()
    small_market(page)  # a market that fits runs again
    page.locator(".config-error").wait_for(state="detached")
    assert page.locator(".run-button").is_enabled()
