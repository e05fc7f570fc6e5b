"""The analysts' web form in a real headless Chromium, served by the real gateway in front of real vLLM on CPU.

The tiny test model was taught the seed examples, so the SQL the page shows is what vLLM generated, byte for
byte, after the gateway checked it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import JavascriptException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway.app import create_app
from gateway.settings import Settings
from gateway.sql_check import SUPPORTED_DIALECTS, dialect_label, in_menu_order
from launch.tiny_model import DANGEROUS_EXAMPLE, SINGER_EXAMPLE, UNGROUNDED_EXAMPLE, TaughtExample
from tests.servers import free_port, serve_in_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)
# Deadlines, not sleeps: a first generation on a busy 2-core machine can take a while; page-only changes are fast.
ANSWER_DEADLINE_S = 120.0
PAGE_DEADLINE_S = 10.0
WRONG_KEY = "sk-sqlgate-not-a-real-key-000000"


@dataclass(frozen=True)
class Example:
    schema: str
    question: str
    sql: str

    @classmethod
    def taught(cls, example: TaughtExample) -> Example:
        return cls(schema=example["context"], question=example["question"], sql=example["answer"])


# Examples the tiny model behind the real vLLM was taught: it answers them byte for byte.
SINGERS = Example.taught(SINGER_EXAMPLE)
OLD_ORDERS = Example.taught(DANGEROUS_EXAMPLE)  # a DELETE: the gateway's read-only policy refuses it
PILOT_AGES = Example.taught(UNGROUNDED_EXAMPLE)  # names a column the schema lacks


@dataclass(frozen=True)
class Site:
    """A running gateway that serves the form, and a key it accepts."""

    base_url: str
    api_key: str


# ---- the one place this file meets the shared fixtures (tests/conftest.py) -------------------------------------

StartSite = Callable[..., Site]
FORM_KEY = "sk-sqlgate-web-form-test-0123456789"


@pytest.fixture
def start_site(vllm_upstream: Any, settings_factory: Callable[..., Settings]) -> Iterator[StartSite]:
    """Start the real gateway (`create_app`, uvicorn on 127.0.0.1) over the session's real vLLM.

    A fresh gateway per test, so each starts with an empty cache and rate-limit window; settings overrides
    (rate limit, a dead upstream) go through `settings_factory`.
    """
    with ExitStack() as servers:

        def start(**settings_overrides: Any) -> Site:
            settings = settings_factory(**{
                "upstream_url": vllm_upstream.base_url,
                "upstream_model": vllm_upstream.model,
                "api_keys": f"analyst={FORM_KEY}",
                **settings_overrides,
            })
            server = servers.enter_context(serve_in_thread(create_app(settings)))
            return Site(base_url=server.base_url, api_key=FORM_KEY)

        yield start


@pytest.fixture
def site(start_site: StartSite) -> Site:
    return start_site()


# ---- the browser --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


class FormPage:
    """What a test does on the form, in the words of the page."""

    def __init__(self, driver: WebDriver, site: Site) -> None:
        self.driver = driver
        self.site = site

    # -- navigation and waiting --
    def open(self, *, clean: bool = True) -> FormPage:
        self.driver.get(self.site.base_url + "/")
        if clean:
            self.driver.execute_script("localStorage.clear(); sessionStorage.clear();")
            self.driver.refresh()
        self.wait_for(lambda: self.driver.execute_script("return document.readyState") == "complete"
                      and self.driver.execute_script("return window.sqlgate !== undefined"), "the page script")
        return self

    def wait_for(self, condition: Callable[[], Any], what: str, deadline_s: float = PAGE_DEADLINE_S) -> Any:
        return WebDriverWait(self.driver, deadline_s, poll_frequency=0.02).until(
            lambda _driver: condition(), message=f"timed out waiting for {what}")

    def element(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def shown(self, element_id: str) -> bool:
        return self.element(element_id).is_displayed()

    # -- typing --
    def type_into(self, element_id: str, text: str) -> None:
        self.element(element_id).send_keys(text)

    def fill(self, example: Example, *, key: str | None) -> None:
        if key is not None:
            self.type_into("api-key", key)
        self.type_into("schema", example.schema)
        self.type_into("question", example.question)

    def value(self, element_id: str) -> str:
        return str(self.element(element_id).get_property("value"))

    # -- submitting --
    def submit(self) -> None:
        self.element("submit").click()

    def wait_for_answer(self) -> str:
        """Wait until the request has finished; returns 'result' or 'error'."""
        self.wait_for(lambda: self.element("result-card").get_attribute("aria-busy") == "true"
                      or self.shown("error") or self.shown("sql-panel"), "the request to start")
        self.wait_for(lambda: self.element("result-card").get_attribute("aria-busy") == "false",
                      "the gateway's answer", ANSWER_DEADLINE_S)
        return "error" if self.shown("error") else "result"

    def expect_result(self) -> str:
        outcome = self.wait_for_answer()
        assert outcome == "result", f"expected SQL, the page shows an error: {self.error_text()!r}"
        return self.sql_text()

    def expect_error(self) -> str:
        outcome = self.wait_for_answer()
        assert outcome == "error", f"expected an error, the page shows SQL: {self.sql_text()!r}"
        return self.error_text()

    # -- reading the result --
    def sql_text(self) -> str:
        return str(self.element("sql-code").get_property("textContent"))

    def error_text(self) -> str:
        return self.element("error").text if self.shown("error") else ""

    def error_code(self) -> str:
        return str(self.element("error").get_attribute("data-code"))

    def badges(self) -> dict[str, tuple[str, str]]:
        """check name -> (kind, label) for each badge under the SQL."""
        found: dict[str, tuple[str, str]] = {}
        for item in self.driver.find_elements(By.CSS_SELECTOR, "#badges .badge"):
            kind = next(c.removeprefix("badge-") for c in str(item.get_attribute("class")).split()
                        if c.startswith("badge-"))
            found[str(item.get_attribute("data-check"))] = (kind, item.text)
        return found

    def meta(self, name: str) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, f'#meta [data-meta="{name}"] dd').text

    def focused_id(self) -> str:
        return str(self.driver.execute_script("return document.activeElement && document.activeElement.id"))


@pytest.fixture
def open_form(chromium: WebDriver) -> Iterator[Callable[[Site], FormPage]]:
    def open_(site: Site) -> FormPage:
        return FormPage(chromium, site).open()

    yield open_
    # Leave the shared browser as the next test expects it: online, normal size, clipboard permissions reset.
    chromium.execute_cdp_cmd("Network.emulateNetworkConditions",
                             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    chromium.execute_cdp_cmd("Browser.resetPermissions", {})
    chromium.set_window_size(1280, 900)


def api_sql(site: Site, example: Example, dialect: str = "sqlite") -> httpx.Response:
    """The same request the page makes, sent directly, to compare the page with the API."""
    return httpx.post(f"{site.base_url}/v1/sql", json={"question": example.question, "schema": example.schema,
                                                       "dialect": dialect},
                      headers={"authorization": f"Bearer {site.api_key}"}, timeout=ANSWER_DEADLINE_S)


# ---- happy paths --------------------------------------------------------------------------------------------------


def test_typed_schema_and_question_come_back_as_checked_highlighted_sql(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.fill(SINGERS, key=site.api_key)
    # Record every state the submit button passes through, so the busy state is seen however fast vLLM is.
    page.driver.execute_script("""
        window.__busyStates = [];
        const button = document.getElementById('submit');
        new MutationObserver(() => window.__busyStates.push([button.disabled,
            button.classList.contains('is-busy'), document.getElementById('submit-label').textContent]))
          .observe(button, {attributes: true, subtree: true, childList: true, characterData: true});
    """)
    page.submit()

    assert page.expect_result() == SINGERS.sql
    busy_states = page.driver.execute_script("return window.__busyStates")
    assert [True, True, "Generating…"] in busy_states
    assert page.element("submit").is_enabled()
    keywords = [span.text for span in page.driver.find_elements(By.CSS_SELECTOR, "#sql-code .tok-keyword")]
    assert keywords == ["SELECT", "FROM"]
    assert [s.text for s in page.driver.find_elements(By.CSS_SELECTOR, "#sql-code .tok-function")] == ["count"]
    badges = page.badges()
    assert badges["valid"] == ("ok", "Passed check")
    assert badges["read-only"] == ("ok", "Read-only")
    assert badges["unknown-tables"][0] == "ok"
    assert badges["unknown-columns"][0] == "ok"
    assert page.meta("cache") == "Miss"
    assert re.fullmatch(r"[\d,]+ ms", page.meta("latency"))
    if screenshot := os.environ.get("SQLGATE_WEB_SCREENSHOT"):
        page.driver.save_screenshot(screenshot)

    # The same question again, from the keyboard this time: the gateway answers from its cache.
    page.element("question").send_keys(Keys.CONTROL, Keys.ENTER)
    page.wait_for(lambda: page.shown("sql-panel") and page.meta("cache") == "Hit", "the cached answer",
                  ANSWER_DEADLINE_S)
    assert page.sql_text() == SINGERS.sql
    assert page.value("question") == SINGERS.question


def test_columns_missing_from_the_schema_are_refused_with_the_reasons(site: Site, open_form: Any) -> None:
    # Grounding is strict by default (issue 12): a column the schema lacks is a 422 `ungrounded_sql`.
    page = open_form(site)
    page.fill(PILOT_AGES, key=site.api_key)
    page.submit()

    text = page.expect_error()
    assert page.error_code() == "ungrounded_sql"
    assert "your schema does not have" in text
    refusal = api_sql(site, PILOT_AGES)
    assert refusal.status_code == 422
    check = refusal.json()["error"]["check"]
    assert check["unknown_columns"]
    reasons = [item.text for item in page.driver.find_elements(By.CSS_SELECTOR, "#error-reasons li")]
    assert reasons == [problem["message"] for problem in check["problems"]]


def test_load_example_fills_a_seed_example_and_undo_gives_back_the_typed_text(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.type_into("question", "my own draft")
    page.element("load-example").click()
    assert page.value("schema") == SINGERS.schema
    assert page.value("question") == SINGERS.question
    assert page.element("question-counter").text == f"{len(SINGERS.question)} / 500"

    page.driver.find_element(By.CSS_SELECTOR, "#status .link-button").click()
    assert page.value("question") == "my own draft"
    assert page.value("schema") == ""


def test_drafts_survive_a_reload_of_the_tab(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.fill(SINGERS, key=None)
    page.open(clean=False)
    assert page.value("schema") == SINGERS.schema
    assert page.value("question") == SINGERS.question


def test_database_picker_offers_exactly_the_supported_dialects(start_site: StartSite, open_form: Any) -> None:
    site = start_site(sql_dialect="duckdb")
    page = open_form(site)
    label = page.driver.find_element(By.CSS_SELECTOR, 'label[for="dialect"]').text
    assert label == "Your database"
    options = [(option.get_attribute("value"), option.text) for option in Select(page.element("dialect")).options]
    assert options == [(name, dialect_label(name)) for name in in_menu_order(SUPPORTED_DIALECTS)]
    assert page.value("dialect") == "duckdb"  # SQLGATE_SQL_DIALECT, until the analyst picks another


def test_chosen_database_reaches_the_gateway_and_the_result_says_what_the_sql_is_in(
        site: Site, open_form: Any) -> None:
    page = open_form(site)
    Select(page.element("dialect")).select_by_value("postgres")
    page.fill(SINGERS, key=site.api_key)
    page.submit()

    shown = page.expect_result()
    answer = api_sql(site, SINGERS, dialect="postgres").json()
    assert shown == answer["sql"]
    check = answer["check"]
    assert check["dialect"] == "postgres"
    source = check.get("source_dialect")
    translated = f", translated from {dialect_label(source)}" if source and source != "postgres" else ""
    assert page.element("sql-caption").get_property("textContent") == f"SQL for PostgreSQL{translated}"
    assert page.element("sql-caption").get_attribute("data-dialect") == "postgres"
    assert page.badges()["dialect"] == ("neutral", "PostgreSQL")
    page.open(clean=False)
    assert page.value("dialect") == "postgres"


# ---- the API key --------------------------------------------------------------------------------------------------


def test_api_key_is_kept_across_reloads_until_forgotten(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.type_into("api-key", site.api_key)
    assert page.element("api-key").get_attribute("type") == "password"
    page.element("toggle-key").click()
    assert page.element("api-key").get_attribute("type") == "text"

    page.open(clean=False)
    assert page.value("api-key") == site.api_key
    assert page.element("api-key").get_attribute("type") == "password"  # shown only until the page is left
    page.fill(SINGERS, key=None)
    page.submit()
    assert page.expect_result() == SINGERS.sql

    page.element("forget-key").click()
    assert page.value("api-key") == ""
    assert page.focused_id() == "api-key"
    page.open(clean=False)
    assert page.value("api-key") == ""


def test_wrong_key_shows_the_auth_message_and_focuses_the_key_field(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.fill(SINGERS, key=WRONG_KEY)
    page.submit()

    assert "API key not accepted" in page.expect_error()
    assert page.error_code() == "invalid_api_key"
    assert page.focused_id() == "api-key"
    assert page.element("api-key").get_attribute("aria-invalid") == "true"
    assert page.shown("api-key-error")
    # Nothing the user typed is lost.
    assert (page.value("schema"), page.value("question")) == (SINGERS.schema, SINGERS.question)

    # Typing the right key clears the complaint, and the same form now works.
    page.element("api-key").clear()
    page.type_into("api-key", site.api_key)
    assert not page.shown("api-key-error")
    page.submit()
    assert page.expect_result() == SINGERS.sql


def test_missing_key_is_asked_for_before_anything_is_sent(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.fill(SINGERS, key=None)
    page.submit()
    page.wait_for(lambda: page.shown("api-key-error"), "the key field's message")
    assert page.element("api-key-error").text.endswith("Enter your API key.")
    assert page.focused_id() == "api-key"
    assert not page.shown("error")
    sent = page.driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/v1/sql')).length")
    assert sent == 0


# ---- caps and refusals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "other_field", "limit"), [("question", "schema", 500), ("schema", "question", 2000)])
def test_text_over_the_cap_shows_the_gateways_message_on_that_field(
        start_site: StartSite, open_form: Any, field: str, other_field: str, limit: int) -> None:
    # The seed deployment's caps (the schema's default is now a whole database's DDL, 1,000,000 characters):
    # the page counts against whatever this gateway is set to.
    site = start_site(max_schema_chars=2000, max_question_chars=500)
    page = open_form(site)
    assert page.element(f"{field}-counter").text == f"0 / {limit:,}"
    page.fill(SINGERS, key=site.api_key)
    filler = " and also" * ((limit - len(getattr(SINGERS, field))) // 9 + 1)
    page.type_into(field, filler)
    length = len(page.value(field))
    assert length > limit
    counter = page.element(f"{field}-counter")
    assert "is-over" in str(counter.get_attribute("class"))
    assert f"{length - limit:,} over" in counter.text

    page.submit()
    page.expect_error()
    assert page.error_code() == f"{field}_too_long"
    assert page.shown(f"{field}-error")
    assert f"the limit is {limit}" in page.element(f"{field}-error").text  # the gateway's own words
    assert page.element(field).get_attribute("aria-invalid") == "true"
    assert page.focused_id() == field
    assert not page.shown(f"{other_field}-error")
    assert len(page.value(field)) == length


def test_the_tables_the_model_was_shown_are_listed_with_the_answer(site: Site, open_form: Any) -> None:
    page = open_form(site)
    assert page.element("schema-counter").text == "0 / 1,000,000"  # a whole database's DDL fits
    answer = api_sql(site, SINGERS).json()
    answer["check"]["schema_scope"] = {"tables_sent": ["singer", "concert", "singer_in_concert"], "tables_total": 200}
    page.driver.execute_script("""
        const body = arguments[0];
        window.fetch = async () => new Response(JSON.stringify(body), {status: 200,
            headers: {"content-type": "application/json"}});
    """, answer)
    page.fill(SINGERS, key=site.api_key)
    page.submit()
    page.expect_result()
    assert page.element("scope").text == "Tables considered (3 of 200): singer, concert, singer_in_concert"


def test_a_pinned_table_the_schema_lacks_is_pointed_out_on_its_field(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.fill(SINGERS, key=site.api_key)
    page.type_into("tables", "singer, no_such_table")
    page.submit()
    page.expect_error()
    assert page.error_code() == "unknown_table"
    assert page.shown("tables-error") and "no_such_table" in page.element("tables-error").text
    assert page.focused_id() == "tables"
    assert page.value("question") == SINGERS.question  # nothing typed is lost


def test_unsafe_request_shows_the_reasons_and_the_failing_query_only_on_demand(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.fill(OLD_ORDERS, key=site.api_key)
    page.submit()

    text = page.expect_error()
    assert page.error_code() == "unsafe_sql"
    assert "SQL blocked" in text
    # The page lists exactly the reasons the gateway gave (asked again directly; the refusal is the same).
    refusal = api_sql(site, OLD_ORDERS)
    assert refusal.status_code == 422
    check = refusal.json()["error"]["check"]
    reasons = [item.text for item in page.driver.find_elements(By.CSS_SELECTOR, "#error-reasons li")]
    assert reasons == [problem["message"] for problem in check["problems"]]
    assert reasons
    # The refused SQL stays out of sight until asked for; then it is marked, failed, and cannot be copied.
    assert not page.shown("sql-panel")
    toggle = page.element("show-failing")
    assert toggle.text == "Show the failing query"
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert page.shown("sql-panel")
    assert page.sql_text() == check["query"]
    assert page.sql_text().upper().startswith("DELETE")
    assert page.element("sql-caption").get_property("textContent") == "Rejected SQL: do not run"
    assert page.badges()["valid"] == ("bad", "Failed check")
    assert page.badges()["read-only"] == ("bad", "Writes data")
    assert not page.element("copy-sql").is_enabled()
    assert toggle.text == "Hide the failing query"
    toggle.click()
    assert not page.shown("sql-panel")

    # The next answer starts clean: no toggle left over from the refusal.
    for field_id in ("schema", "question"):
        page.element(field_id).clear()
    page.fill(SINGERS, key=None)
    page.submit()
    assert page.expect_result() == SINGERS.sql
    assert not page.shown("show-failing")
    assert page.badges()["valid"] == ("ok", "Passed check")


# Refusals the answer pipeline of this branch does not produce from the taught model yet (ungrounded names,
# unanswerable questions, cut-off answers, untranslatable SQL): the page's own fetch is handed the gateway's
# documented 422 body (docs/contract.md) so the page code runs end to end in the real browser.
REFUSALS = [
    ("ungrounded_sql", "The SQL uses tables or columns your schema does not have",
     "SELECT avg(age) FROM pilot", [("ungrounded_sql", "Column 'age' is not in table 'pilot'.")]),
    ("unanswerable_sql", "This question can't be answered from this schema",
     "SELECT 1", [("unanswerable_sql", "No table of the schema holds what the question asks for.")]),
    ("truncated_sql", "The model's answer was cut off",
     "SELECT name FROM singer WHERE", [("truncated_sql", "The answer stopped at the token limit.")]),
    ("invalid_sql", "The model's SQL did not pass the check",
     "SELECT * FROM FROM singer", [("parse_error", "The SQL could not be parsed near 'FROM'.")]),
    ("untranslatable_sql", "The SQL can't be written for your database",
     "SELECT julianday('now')", [("untranslatable_sql", "The function JULIANDAY() has no known equivalent in "
                                                        "PostgreSQL.")]),
    ("unverifiable_sql", "Part of your schema could not be read",
     "SELECT title FROM memo", [("unverifiable", "The query reads memo, which the schema defines in a statement "
                                                 "the check could not read: memo(id, title)")]),
    ("expensive_sql", "The SQL would be too costly to run",
     "SELECT lpad('x', 2000000000, 'y')", [("expensive", "lpad('x', 2000000000, 'y') builds about 2,000,000,000 "
                                                         "characters (the limit is 100,000).")]),
]


@pytest.mark.parametrize(("code", "title", "query", "problems"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_is_explained_plainly_with_the_failing_query_on_demand(
        site: Site, open_form: Any, code: str, title: str, query: str, problems: list[tuple[str, str]]) -> None:
    page = open_form(site)
    check = {"valid": False, "statement_type": "select", "read_only": True, "tables": [], "columns": [],
             "unknown_tables": [], "unknown_columns": [], "dialect": "sqlite", "query": query, "error_code": code,
             "problems": [{"code": c, "message": m} for c, m in problems]}
    body = {"error": {"message": problems[0][1], "type": "sql_check_error", "param": None, "code": code,
                      "check": check}}
    page.driver.execute_script("""
        const body = arguments[0];
        window.fetch = async () => new Response(JSON.stringify(body),
            {status: 422, headers: {"content-type": "application/json", "x-request-id": "req-refusal"}});
    """, body)
    page.fill(SINGERS, key=site.api_key)
    page.submit()

    page.expect_error()
    assert page.error_code() == code
    assert page.element("error-title").text == title
    reasons = [item.text for item in page.driver.find_elements(By.CSS_SELECTOR, "#error-reasons li")]
    assert reasons == [message for _, message in problems]
    assert not page.shown("sql-panel")
    page.element("show-failing").click()
    assert page.sql_text() == query
    assert page.badges()["valid"] == ("bad", "Failed check")
    assert "Passed check" not in page.element("result-card").text
    assert not page.element("copy-sql").is_enabled()


def test_the_answer_says_in_words_how_many_candidate_queries_agree(start_site: StartSite, open_form: Any) -> None:
    # The `always` policy (the GPU default): the real vLLM draws 4 samples next to the greedy answer, and the
    # gateway votes on what each returns from databases built from the schema.
    site = start_site(sql_candidates_policy="always", sql_candidates=4)
    page = open_form(site)
    page.fill(SINGERS, key=site.api_key)
    page.submit()
    assert page.expect_result() == SINGERS.sql
    kind, label = page.badges()["agreement"]
    said = re.fullmatch(r"(\d) of 5 candidate queries agrees?", label)
    assert said is not None, label
    check = api_sql(site, SINGERS).json()["check"]  # the same request again: the cached answer, same vote
    assert int(said.group(1)) == check["agreement"]["agreeing"]
    assert kind == ("ok" if check["agreement"]["ratio"] >= 0.75 else "neutral" if check["agreement"]["ratio"] >= 0.5
                    else "warn")


def test_a_low_confidence_refusal_shows_the_competing_queries(site: Site, open_form: Any) -> None:
    page = open_form(site)
    check = {"valid": False, "statement_type": "select", "read_only": True, "tables": ["singer"], "columns": [],
             "unknown_tables": [], "unknown_columns": [], "dialect": "sqlite", "query": "SELECT count(*) FROM singer",
             "error_code": "low_confidence",
             "problems": [{"code": "low_agreement", "message": "only 2 of 5 candidate queries agree, below the 0.75 "
                                                               "this gateway requires"}],
             "agreement": {"candidates": 5, "agreeing": 2, "ratio": 0.4},
             "competing": [{"query": "SELECT count(*) FROM singer", "votes": 2},
                           {"query": "SELECT count(DISTINCT Name) FROM singer", "votes": 1}]}
    body = {"error": {"message": "The generated SQL was rejected", "type": "sql_check_error", "param": None,
                      "code": "low_confidence", "check": check}}
    page.driver.execute_script("""
        const body = arguments[0];
        window.fetch = async () => new Response(JSON.stringify(body),
            {status: 422, headers: {"content-type": "application/json"}});
    """, body)
    page.fill(SINGERS, key=site.api_key)
    page.submit()
    page.expect_error()
    assert page.element("error-title").text == "The candidate queries disagree"
    reasons = [item.text for item in page.driver.find_elements(By.CSS_SELECTOR, "#error-reasons li")]
    assert reasons == ["only 2 of 5 candidate queries agree, below the 0.75 this gateway requires",
                       "2 of the candidates: SELECT count(*) FROM singer",
                       "1 of the candidates: SELECT count(DISTINCT Name) FROM singer"]
    page.element("show-failing").click()
    assert page.badges()["agreement"] == ("warn", "2 of 5 candidate queries agree")


def test_passed_check_means_the_check_said_valid_in_so_many_words(site: Site, open_form: Any) -> None:
    page = open_form(site)
    verdicts = page.driver.execute_script("""
        return arguments[0].map((check) => window.sqlgate.passedCheck(check));
    """, [{"valid": True}, {"valid": True, "compiled": True}, {"valid": True, "compiled": None},
          {"valid": True, "compiled": False}, {"valid": "true"}, {"valid": 1}, {}, None])
    assert verdicts == [True, True, True, False, False, False, False, False]


def test_rate_limited_request_shows_when_to_try_again(start_site: StartSite, open_form: Any) -> None:
    site = start_site(rate_limit_per_minute=1)
    page = open_form(site)
    page.fill(SINGERS, key=site.api_key)
    page.submit()
    assert page.expect_result() == SINGERS.sql

    page.submit()
    text = page.expect_error()
    assert page.error_code() == "rate_limit_exceeded"
    seconds = re.search(r"Try again in (\d+) seconds?\.", text)
    assert seconds is not None, text
    assert 1 <= int(seconds.group(1)) <= 60
    assert page.value("question") == SINGERS.question


def test_model_server_down_shows_an_unavailable_message(start_site: StartSite, open_form: Any) -> None:
    nothing_listens = f"http://127.0.0.1:{free_port()}"  # bound, then released: connections are refused
    site = start_site(upstream_url=nothing_listens, upstream_retry_attempts=1)
    page = open_form(site)
    page.fill(SINGERS, key=site.api_key)
    page.submit()

    assert "The model server is unavailable" in page.expect_error()
    assert page.error_code() == "upstream_unavailable"
    assert page.element("error-meta").text.startswith("Reference: ")
    assert page.value("schema") == SINGERS.schema


def test_network_failure_says_so_and_keeps_the_typed_text(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.fill(SINGERS, key=site.api_key)
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                                {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    page.submit()

    assert "Could not reach sqlgate" in page.expect_error()
    assert page.error_code() == "network_error"
    assert (page.value("schema"), page.value("question")) == (SINGERS.schema, SINGERS.question)
    assert page.element("submit").is_enabled()


# ---- copying --------------------------------------------------------------------------------------------------------


def test_copy_button_puts_the_sql_on_the_clipboard(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": site.base_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    page.fill(SINGERS, key=site.api_key)
    page.submit()
    assert page.expect_result() == SINGERS.sql

    page.element("copy-sql").click()
    page.wait_for(lambda: page.element("copy-sql").get_attribute("data-copied"), "the copy")
    assert page.element("copy-sql").get_attribute("data-copied") == "clipboard"
    pasted = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, (err) => done('ERROR ' + err));")
    assert pasted == SINGERS.sql


def test_copy_falls_back_to_a_selection_copy_without_clipboard_permission(site: Site, open_form: Any) -> None:
    page = open_form(site)
    page.driver.execute_cdp_cmd("Browser.setPermission", {
        "origin": site.base_url, "permission": {"name": "clipboard-write"}, "setting": "denied"})
    page.fill(SINGERS, key=site.api_key)
    page.submit()
    assert page.expect_result() == SINGERS.sql
    # What a real copy puts on the clipboard is the selection at the moment of the copy event (a selection
    # inside a textarea is read from the control itself where getSelection() does not report it).
    page.driver.execute_script("""
        window.__copied = [];
        document.addEventListener('copy', () => window.__copied.push(String(document.getSelection())
            || document.activeElement.value.slice(document.activeElement.selectionStart,
                                                  document.activeElement.selectionEnd)));
    """)
    page.element("copy-sql").click()
    page.wait_for(lambda: page.element("copy-sql").get_attribute("data-copied"), "the copy")
    assert page.element("copy-sql").get_attribute("data-copied") == "selection"
    assert page.driver.execute_script("return window.__copied") == [SINGERS.sql]
    assert page.focused_id() == "copy-sql"


# ---- the page itself ------------------------------------------------------------------------------------------------


def test_highlighter_never_turns_hostile_sql_into_markup(site: Site, open_form: Any) -> None:
    page = open_form(site)
    hostile = ("SELECT '<img src=x onerror=\"window.__pwned=1\">' AS \"</code><b>x</b>\" -- <script>"
               "window.__pwned=2</script>\nFROM t WHERE a >= 1.5e3 /* <svg onload=alert(1)> */")
    result = page.driver.execute_script("""
        const target = document.createElement('code');
        document.body.appendChild(target);
        window.sqlgate.renderSql(target, arguments[0]);
        const tags = [...target.querySelectorAll('*')].map(e => e.tagName);
        const types = window.sqlgate.tokenizeSql(arguments[0]).map(t => t.type);
        const text = target.textContent;
        target.remove();
        return {tags, types, text, pwned: window.__pwned === undefined ? null : window.__pwned};
    """, hostile)
    assert result["text"] == hostile
    assert set(result["tags"]) == {"SPAN"}
    assert result["pwned"] is None
    for kind in ("keyword", "string", "identifier", "comment", "number", "operator"):
        assert kind in result["types"]


def test_page_is_self_contained_labelled_and_fits_a_phone(site: Site, open_form: Any) -> None:
    page = open_form(site)
    foreign = page.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(name => !name.startsWith(location.origin))")
    assert foreign == []
    unlabelled = page.driver.execute_script(
        "return [...document.querySelectorAll('input, textarea, select')]"
        ".filter(e => e.getAttribute('aria-hidden') !== 'true' && e.labels.length === 0).map(e => e.id)")
    assert unlabelled == []
    with pytest.raises(JavascriptException):  # the page's CSP refuses inline script
        page.driver.execute_script("""
            const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
            document.head.appendChild(s);
            if (window.__inline !== 1) throw new Error('inline script blocked');
        """)

    page.driver.set_window_size(390, 844)
    page.wait_for(lambda: page.driver.execute_script("return window.innerWidth") <= 400, "the narrow window")
    overflow = page.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
