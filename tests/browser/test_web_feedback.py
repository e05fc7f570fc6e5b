"""Feedback on the analysts' form, end to end in a real headless Chromium: the real gateway in front of the real
vLLM on CPU, with a fake upstream between them that only passes requests on and counts them. Ask, 👍, ask again:
the answer comes from memory (`source: verified`, "Verified by analyst on 3 Dec") with no vLLM call; a changed
schema goes to the model again; a correction is checked before it is kept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from launch.tiny_model import EMPLOYEE_EXAMPLE
from tests import faults
from tests.browser.test_web_form import (  # noqa: F401 (fixtures, used by name)
    ANSWER_DEADLINE_S,
    SINGERS,
    Example,
    FormPage,
    Site,
    StartSite,
    chromium,
    open_form,
    start_site,
)
from tests.servers import FakeUpstream, fake_upstream

pytestmark = pytest.mark.browser

EMPLOYEES = Example.taught(EMPLOYEE_EXAMPLE)


@pytest.fixture
def counted(vllm_upstream: Any, start_site: StartSite) -> Iterator[tuple[Site, FakeUpstream]]:  # noqa: F811
    """The gateway with a call-counting pass-through between it and the real vLLM."""
    with fake_upstream(faults.ok()) as counter:
        counter.faults = [faults.forward(counter.requests, vllm_upstream.base_url)]
        yield start_site(upstream_url=counter.base_url), counter


def feedback_status(page: FormPage) -> str:
    return str(page.element("feedback-status").text)


def today() -> str:
    now = datetime.now(UTC)
    return f"{now.day} {now.strftime('%b')}"


def retype(page: FormPage, element_id: str, text: str) -> None:
    page.element(element_id).clear()
    page.type_into(element_id, text)


def answered(site: Site, open_page: Callable[[Site], FormPage], example: Example) -> FormPage:
    """The form on `site` (opened by the `open_form` fixture), `example` asked and answered with its own SQL."""
    page = open_page(site)
    page.fill(example, key=site.api_key)
    page.submit()
    assert page.expect_result() == example.sql
    return page


def thumbs_up(page: FormPage) -> None:
    page.element("feedback-up").click()
    page.wait_for(lambda: "now a verified query" in feedback_status(page), "the rating to be kept")


def save_correction(page: FormPage, sql: str) -> None:
    retype(page, "correction", sql)
    page.element("save-correction").click()


def ask_again(page: FormPage, question: str | None = None) -> str:
    if question is not None:
        retype(page, "question", question)
    page.submit()
    return page.wait_for_answer()


def test_thumbs_up_then_the_same_question_answers_from_memory_without_vllm_and_a_new_schema_asks_it(
        counted: tuple[Site, FakeUpstream], open_form: Any) -> None:  # noqa: F811
    site, counter = counted
    page = answered(site, open_form, SINGERS)
    assert page.meta("source") == "Model" and not page.shown("verified-note")
    assert len(counter.requests) == 1

    thumbs_up(page)
    assert page.element("feedback-up").get_attribute("aria-pressed") == "true"

    assert ask_again(page) == "result"
    assert page.sql_text() == SINGERS.sql
    assert page.meta("source") == "Verified query"
    assert page.element("verified-note").text == f"Verified by analyst on {today()}"
    assert page.element("status").text == "Done (answered from a verified query)."
    assert len(counter.requests) == 1  # no vLLM call for the second answer

    retype(page, "schema", SINGERS.schema.replace(")", ", Age int)"))  # another column: another schema
    outcome = ask_again(page)
    assert len(counter.requests) >= 2  # the model was asked (and, when its answer failed, sampled)
    if outcome == "result":
        assert page.meta("source") == "Model" and not page.shown("verified-note")


def test_a_question_with_other_values_is_answered_from_the_verified_query_with_them(
        counted: tuple[Site, FakeUpstream], open_form: Any) -> None:  # noqa: F811
    site, counter = counted
    page = answered(site, open_form, EMPLOYEES)
    thumbs_up(page)

    assert ask_again(page, "Find all employees in the Sales department with a salary above 65000.") == "result"
    assert page.sql_text() == "SELECT * FROM employee WHERE Department = 'Sales' AND Salary > 65000"
    assert page.element("verified-note").text == (
        f"Verified by analyst on {today()} (with this question's values)")
    assert len(counter.requests) == 1


def test_a_correction_is_checked_refused_with_its_reasons_then_kept(
        counted: tuple[Site, FakeUpstream], open_form: Any) -> None:  # noqa: F811
    site, counter = counted
    page = answered(site, open_form, SINGERS)

    page.element("correct-it").click()
    assert page.shown("correction-form") and page.value("correction") == SINGERS.sql  # starts from the answer
    save_correction(page, "SELECT count(*) FROM singers")
    page.wait_for(lambda: page.shown("correction-error"), "the refusal")
    assert "did not pass the check" in page.element("correction-error").text
    reasons = [item.text for item in page.driver.find_elements(By.CSS_SELECTOR, "#correction-reasons li")]
    assert reasons and any("singers" in reason for reason in reasons)
    assert page.element("correction").get_attribute("aria-invalid") == "true"

    save_correction(page, "SELECT count(Singer_ID) FROM singer")
    page.wait_for(lambda: "correction passed the check" in feedback_status(page), "the correction to be kept")
    assert not page.shown("correction-form")

    assert ask_again(page) == "result"
    assert page.sql_text() == "SELECT count(Singer_ID) FROM singer"
    assert page.element("verified-note").text == f"Corrected by analyst on {today()}"
    assert len(counter.requests) == 1


def test_the_verified_note_says_who_and_when_in_words(site_page: FormPage) -> None:
    texts = site_page.driver.execute_script("""
        const now = new Date('2025-12-20T12:00:00Z');
        const f = window.sqlgateFeedback.verifiedText;
        return [
          f({source: 'verified', memory: {verified_by: 'alice', verified_at: '2025-12-03T09:30:00.000000Z',
                                          origin: 'rating', rebound: false}}, now),
          f({source: 'verified', memory: {verified_by: null, verified_at: '2024-06-01T00:00:00Z',
                                          origin: 'correction', rebound: true}}, now),
          f({source: 'cache', memory: null}, now),
          f({source: 'verified', memory: {verified_by: '<b>x</b>', verified_at: 'not a date'}}, now),
        ];
    """)
    assert texts == ["Verified by alice on 3 Dec",
                     "Corrected by a colleague on 1 Jun 2024 (with this question's values)",
                     None,
                     "Verified by <b>x</b>"]


@pytest.fixture
def site_page(start_site: StartSite, open_form: Any) -> FormPage:  # noqa: F811
    return open_form(start_site())  # type: ignore[no-any-return]
