"""The dashboard in a real browser (Debian's headless Chromium through Selenium), against a database
filled through the webhook path: the figures a page shows are those of /api/stats, filters and
exports work, and the browser logs no error. Screenshots go to tests/artifacts/ (not committed)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from app.formatting import fmt_number, fmt_p
from tests.e2e import INSTALLATION, POLICY, REPO, Stack, open_issue
from tests.waiting import HTTP_TIMEOUT_S, wait_until

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PTM = [("CUDA out of memory when loading the SDXL model", "RuntimeError: CUDA out of memory on an 8 GB GPU", "bug"),
       ("Whisper transcription is empty for long audio", "the model returns no text after 30 seconds", "bug"),
       ("Please support the Llama 3 model", "it would be great to load Llama 3 weights", "enhancement")]
OTHER = [("Navbar links overlap on mobile Safari", "the CSS of the top bar breaks below 400px", "bug"),
         ("Add a dark mode to the settings page", "follow the system theme", "enhancement"),
         ("Typo in the README install section", "it says instal", "question")]

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def filled(stack: Stack) -> Stack:
    """Eighteen issues through the webhook: PTM-related ones opened longer ago, most of them closed."""
    numbers = []
    for k in range(9):
        for texts, age in ((PTM, 40 + 7 * k), (OTHER, 5 + 2 * k)):
            title, body, kind = texts[k % 3]
            numbers.append(open_issue(stack, f"{title} ({k})", body, created_days_ago=age, labels=[kind]))
    for number in numbers[:-4]:
        stack.sim.set_issue_state(REPO, number, "closed")
        stack.send("issues", stack.sim.issues_payload("closed", REPO, number, INSTALLATION))
    stack.settle()
    corrected = numbers[-1]  # a maintainer takes the app's label off one issue
    kept = {label["name"] for label in stack.sim.issue(REPO, corrected)["labels"]} - {POLICY.ptm_label}
    stack.sim.set_issue_labels(REPO, corrected, sorted(kept | {POLICY.ptm_label}))
    stack.send("issues", stack.sim.issues_payload("labeled", REPO, corrected, INSTALLATION, sender="maintainer",
                                                  label=POLICY.ptm_label))
    stack.settle()
    return stack


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "browser tests need Debian's chromium and chromium-driver: `bash scripts/setup.sh test` installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,2000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def load(browser: WebDriver, url: str, charts: int = 0) -> None:
    browser.get(url)
    if charts:
        wait_until(lambda: browser.execute_script("return document.body.dataset.chartsDrawn") == str(charts),
                   f"{charts} charts drawn on {url}")
        drawn = browser.find_elements(By.CSS_SELECTOR, ".chart.js-plotly-plot")
        assert len(drawn) == charts, "plotly drew into every chart element"


def errors(browser: WebDriver) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def cells(browser: WebDriver, row_selector: str) -> list[str]:
    return [td.text for td in browser.find_elements(By.CSS_SELECTOR, f"{row_selector} td")]


def test_overview_shows_each_repository_as_the_api_does(filled: Stack, browser: WebDriver) -> None:
    load(browser, f"{filled.url}/dashboard")
    group = filled.get("/api/stats")["repositories"][REPO]
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-repo="{REPO}"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-field="ptm-median"]').text == fmt_number(group["ptm"]["median"])
    assert row.find_element(By.CSS_SELECTOR, '[data-field="non-ptm-median"]').text == fmt_number(
        group["non_ptm"]["median"])
    browser.save_screenshot(str(ARTIFACTS / "overview.png"))
    row.find_element(By.LINK_TEXT, REPO).click()
    wait_until(lambda: browser.current_url.endswith(f"/dashboard/{REPO}"), "the repository's page opened")
    assert errors(browser) == []


def test_repository_page_shows_the_api_figures_and_draws_every_chart(filled: Stack, browser: WebDriver) -> None:
    load(browser, f"{filled.url}/dashboard/{REPO}", charts=4)
    group = filled.get("/api/stats", repo=REPO)["overall"]
    ptm, non = cells(browser, 'tr[data-group="ptm"]'), cells(browser, 'tr[data-group="non_ptm"]')
    assert ptm[1:4] == [str(group["ptm"]["n"]), fmt_number(group["ptm"]["mean"]), fmt_number(group["ptm"]["median"])]
    assert non[1:4] == [str(group["non_ptm"]["n"]), fmt_number(group["non_ptm"]["mean"]),
                        fmt_number(group["non_ptm"]["median"])]
    assert ptm[-1] == str(group["open"]["ptm"])
    verdict = browser.find_element(By.ID, "verdict").text
    assert f"p = {fmt_p(group['mann_whitney']['p'])}" in verdict
    assert "PTM-related issues take longer to close here" in verdict  # 40+ days against 5+ days
    corrected = browser.find_element(By.ID, "corrected").text
    assert fmt_number(group["corrected"]["difference_days"]["mean"]) in corrected
    for chart in ("chart-share", "chart-resolution", "chart-themes", "chart-flow"):
        element = browser.find_element(By.ID, chart)
        assert element.get_attribute("role") == "img" and browser.find_element(By.ID, f"{chart}-summary").text
    assert "Maintainers changed the app's labels on 1 issue" in browser.find_element(By.ID, "corrections").text
    open_rows = browser.find_elements(By.CSS_SELECTOR, "#open-ptm tbody tr")
    assert len(open_rows) == group["open"]["ptm"]
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#latest a")]
    assert links and all(link.startswith(f"https://github.com/{REPO}/issues/") for link in links)
    browser.save_screenshot(str(ARTIFACTS / "repository.png"))
    assert errors(browser) == []


def test_filters_change_every_figure_like_the_api(filled: Stack, browser: WebDriver) -> None:
    load(browser, f"{filled.url}/dashboard/{REPO}", charts=4)
    Select(browser.find_element(By.NAME, "type")).select_by_value("bug")
    browser.find_element(By.CSS_SELECTOR, 'form.filters button[type="submit"]').click()
    wait_until(lambda: "type=bug" in browser.current_url, "the filter form submitted")
    wait_until(lambda: browser.execute_script("return document.body.dataset.chartsDrawn") == "4", "charts redrawn")
    bugs = filled.get("/api/stats", repo=REPO, type="bug")["overall"]
    everything = filled.get("/api/stats", repo=REPO)["overall"]
    assert bugs["ptm"]["n"] < everything["ptm"]["n"]
    assert cells(browser, 'tr[data-group="ptm"]')[1] == str(bugs["ptm"]["n"])
    assert cells(browser, 'tr[data-group="non_ptm"]')[1] == str(bugs["non_ptm"]["n"])
    csv_url = browser.find_element(By.ID, "export-csv").get_attribute("href")
    json_url = browser.find_element(By.ID, "export-json").get_attribute("href")
    assert csv_url and json_url and "type=bug" in csv_url
    rows = list(csv.DictReader(io.StringIO(httpx.get(csv_url, timeout=HTTP_TIMEOUT_S).text)))
    exported = json.loads(httpx.get(json_url, timeout=HTTP_TIMEOUT_S).text)
    assert {r["type"] for r in rows} == {"bug"} and len(rows) == len(exported["issues"])
    closed_ptm = [r for r in rows if r["group"] == "ptm" and r["closed"]]
    assert len(closed_ptm) == bugs["ptm"]["n"] and exported["filters"]["type"] == "bug"
    browser.save_screenshot(str(ARTIFACTS / "repository-bugs.png"))
    assert errors(browser) == []


def test_readable_on_a_phone(filled: Stack) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844,
                                                                          "pixelRatio": 1}})
    phone = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        load(phone, f"{filled.url}/dashboard/{REPO}", charts=4)
        inner, scroll = phone.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
        assert scroll <= inner, "nothing wider than the phone's screen"
        phone.save_screenshot(str(ARTIFACTS / "repository-phone.png"))
    finally:
        phone.quit()


def test_bad_requests_say_what_is_wrong(filled: Stack) -> None:
    def get(path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{filled.url}{path}", params=params, timeout=HTTP_TIMEOUT_S)

    assert get("/dashboard/nobody/nothing").status_code == 404
    bad_theme = get(f"/dashboard/{REPO}", theme="XX")
    assert bad_theme.status_code == 422 and "unknown theme 'XX'" in bad_theme.text
    assert get(f"/dashboard/{REPO}", type="feature").status_code == 422
    assert get(f"/dashboard/{REPO}", since="2024-02-01", until="2024-01-01").status_code == 422
    assert "since must be a day as YYYY-MM-DD" in get(f"/dashboard/{REPO}", since="last week").text
    assert get(f"/dashboard/{REPO}", since="", until="", theme="", type="").status_code == 200  # a blank form
    assert get(f"/dashboard/{REPO}/issues.xml").status_code == 404
    moved = get("/dashboard", repo=REPO)
    assert moved.status_code == 307 and moved.headers["location"] == f"/dashboard/{REPO}"
    assert get("/static/plotly.min.js").content.startswith(b"/**")


def test_titles_are_shown_as_text_never_as_markup(filled: Stack) -> None:
    open_issue(filled, '<img src=x onerror="alert(1)"> CUDA out of memory with SDXL', "RuntimeError: CUDA out of memory")
    page = httpx.get(f"{filled.url}/dashboard/{REPO}", timeout=HTTP_TIMEOUT_S).text
    assert "&lt;img src=x onerror=" in page and "<img src=x" not in page


def test_little_data_is_said_in_words(stack: Stack) -> None:
    def page(path: str) -> str:
        return httpx.get(f"{stack.url}{path}", timeout=HTTP_TIMEOUT_S).text

    assert "No issue is tracked yet" in page("/dashboard")
    number = open_issue(stack, PTM[0][0], PTM[0][1], created_days_ago=3)
    assert "No closed issues yet: nothing to compare." in page(f"/dashboard/{REPO}")
    stack.sim.set_issue_state(REPO, number, "closed")
    stack.send("issues", stack.sim.issues_payload("closed", REPO, number, INSTALLATION))
    stack.settle()
    few = page(f"/dashboard/{REPO}")
    assert "Not enough to tell yet: too few closed issues" in few and "not estimated: too few closed issues" in few
