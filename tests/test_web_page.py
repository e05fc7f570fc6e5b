"""The page route fills the web form's database picker from SUPPORTED_DIALECTS: one list, served by the gateway,
with SQLGATE_SQL_DIALECT selected. (What the page does with it: tests/browser/test_web_form.py.)"""

from __future__ import annotations

import re
from html import unescape

import pytest

from gateway.app import create_app
from gateway.sql_check import SUPPORTED_DIALECTS, dialect_label, in_menu_order
from tests.conftest import asgi_client, make_settings

OPTION = re.compile(r'<option value="([^"]+)"( selected)?>([^<]+)</option>')


async def _picker(default: str) -> list[tuple[str, bool, str]]:
    async with asgi_client(create_app(make_settings(sql_dialect=default)), key=None) as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert '<label for="dialect">Your database</label>' in page.text
    select = page.text[page.text.index('<select id="dialect"'):page.text.index("</select>")]
    return [(value, bool(selected), unescape(label)) for value, selected, label in OPTION.findall(select)]


@pytest.mark.parametrize("default", ["sqlite", "tsql"])
async def test_picker_lists_exactly_the_supported_dialects_with_the_default_selected(default: str) -> None:
    options = await _picker(default)
    assert [value for value, _, _ in options] == in_menu_order(SUPPORTED_DIALECTS)
    assert sorted(value for value, _, _ in options) == sorted(SUPPORTED_DIALECTS)
    assert [value for value, selected, _ in options if selected] == [default]
    assert all(label == dialect_label(value) for value, _, label in options)


def test_menu_order_puts_the_common_engines_first() -> None:
    order = in_menu_order(SUPPORTED_DIALECTS)
    assert order[:5] == ["sqlite", "postgres", "mysql", "tsql", "duckdb"]
    assert order[5:] == sorted(order[5:], key=lambda name: dialect_label(name).lower())
