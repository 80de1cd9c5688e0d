"""The run viewer in a real browser: Debian's chromium, driven by chromedriver through selenium.

The page is opened from disk (``file://``), as a user would open it, with the network off
for the browser (no QUIC, no background networking, no component updates), so a page that
fetched anything would show it broken. The test leaves two screenshots for a person to look
at, in a fixed place: ``runs/screenshots/viewer-index.png`` and
``runs/screenshots/viewer-episode.png`` under the repository root.

``tests/run.sh`` installs ``chromium`` and ``chromium-driver`` with apt when they are missing
and it runs as root; elsewhere this test is skipped with the reason.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is in the dev extra")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from mosaic_gym.evaluate import evaluate_policy  # noqa: E402
from mosaic_gym.report.viewer import verdict, write_report  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "runs" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium "
           "chromium-driver; tests/run.sh does it as root)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with every category, attacks, leaks and refusals: 'comply' on the test split."""
    out = tmp_path_factory.mktemp("run")
    evaluate_policy(policy="comply", env_id="mosaic/All-v0", split="test", attack="all",
                    seeds=range(1), out=out, quiet=True)
    write_report(out)
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "trajectories.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _visible_rows(browser) -> list:
    return [row for row in browser.find_elements(By.CSS_SELECTOR, "tr.ep") if row.is_displayed()]


def test_the_index_counts_match_metrics_json(browser, run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    browser.get((run_dir / "report.html").resolve().as_uri())
    assert browser.find_element(By.ID, "index").is_displayed()
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.ep")
    assert len(rows) == metrics["episodes"]
    assert int(browser.find_element(By.ID, "shown").text) == metrics["episodes"]
    table = browser.find_element(By.CSS_SELECTOR, 'table.metrics[data-by="category"]')
    assert len(metrics["metrics"]) >= 3, "the fixture run should cover several categories"
    for group, values in metrics["metrics"].items():
        cell = table.find_element(By.CSS_SELECTOR,
                                  f'td[data-group="{group}"][data-metric="episodes"]')
        assert int(cell.text) == int(values["episodes"]), group
        for metric in ("harm_rate", "leak_rate", "attack_success_rate", "correct_rate"):
            rate = table.find_element(By.CSS_SELECTOR,
                                      f'td[data-group="{group}"][data-metric="{metric}"]')
            k, n = int(rate.get_attribute("data-k")), int(rate.get_attribute("data-n"))
            if values[metric] is None:
                assert n == 0 and rate.text == "—"
            else:
                assert k / n == pytest.approx(values[metric]), (group, metric)
                assert f"({k}/{n})" in rate.text
    # The attack and domain breakdowns are there too, each with an 'all' column.
    for by in ("attack", "domain"):
        other = browser.find_element(By.CSS_SELECTOR, f'table.metrics[data-by="{by}"]')
        total = other.find_element(By.CSS_SELECTOR, 'td[data-group="all"][data-metric="episodes"]')
        assert int(total.text) == metrics["episodes"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / "viewer-index.png"))


def test_filters_narrow_the_episode_list(browser, run_dir: Path) -> None:
    records = _records(run_dir)
    verdicts = Counter(verdict(r["outcome"]) for r in records)
    browser.get((run_dir / "report.html").resolve().as_uri())
    chosen, expected = "leak", verdicts["leak"]
    assert expected > 0 and expected < len(records)
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value(chosen)
    visible = _visible_rows(browser)
    assert len(visible) == expected == int(browser.find_element(By.ID, "shown").text)
    assert {row.get_attribute("data-verdict") for row in visible} == {chosen}
    # A second filter narrows further: leaks of one attack strategy.
    attack = visible[0].get_attribute("data-attack")
    Select(browser.find_element(By.ID, "f-attack")).select_by_value(attack)
    both = sum(1 for r in records if verdict(r["outcome"]) == chosen
               and (r["attack"] or "none") == attack)
    assert len(_visible_rows(browser)) == both
    # The scenario search is a substring match; back to "any" verdict and attack.
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("")
    Select(browser.find_element(By.ID, "f-attack")).select_by_value("")
    needle = records[0]["scenario_id"].split(".")[0]
    box = browser.find_element(By.ID, "f-scenario")
    box.send_keys(needle)
    assert len(_visible_rows(browser)) == sum(1 for r in records if needle in r["scenario_id"])


def test_an_attacked_episode_opens_with_its_trace(browser, run_dir: Path) -> None:
    records = _records(run_dir)
    index = next(i for i, r in enumerate(records)
                 if r["attack"] and r["outcome"]["leaks"] and r["injected_text"])
    record = records[index]
    browser.get((run_dir / "report.html").resolve().as_uri())
    browser.find_element(By.CSS_SELECTOR, f'a[href="#episode-{index}"]').click()
    section = browser.find_element(By.ID, f"episode-{index}")
    assert section.is_displayed()
    assert not browser.find_element(By.ID, "index").is_displayed()
    assert record["scenario_id"] in section.find_element(By.TAG_NAME, "h2").text
    assistant = section.find_elements(By.CSS_SELECTOR, ".msg.assistant")
    assert len(assistant) == sum(1 for m in record["messages"] if m["role"] == "assistant")
    # The injected text is highlighted where it entered, and only in a tool observation.
    marks = section.find_elements(By.CSS_SELECTOR, ".msg.tool mark.injected")
    assert marks and record["injected_text"].strip()[:40] in marks[0].text
    ledger_rows = section.find_elements(By.CSS_SELECTOR, "tr.ledger-row")
    assert len(ledger_rows) == len(record["ledger"])
    leak_rows = section.find_elements(By.CSS_SELECTOR, "table.leaks tr")[1:]
    assert len(leak_rows) == len(record["outcome"]["leaks"])
    first = record["outcome"]["leaks"][0]
    assert first["channel"] in leak_rows[0].text and first["encoding"] in leak_rows[0].text
    assert verdict(record["outcome"]) in section.find_element(By.TAG_NAME, "aside").text
    # A tall window so that the screenshot shows the trace down to the highlighted text.
    browser.set_window_size(1400, 2400)
    assert browser.save_screenshot(str(SCREENSHOTS / "viewer-episode.png"))
    browser.set_window_size(1400, 1000)
    # Back to the list with the browser's back button.
    browser.back()
    assert browser.find_element(By.ID, "index").is_displayed()
