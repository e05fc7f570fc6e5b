"""The analysts' web form: static files, no build step, no CDN. The page's database picker is filled here from
SUPPORTED_DIALECTS, with SQLGATE_SQL_DIALECT selected: the one list the API and the guard use."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from gateway.deps import State
from gateway.settings import PACKAGE_DIR
from gateway.sql_check import SUPPORTED_DIALECTS, dialect_label, in_menu_order

WEB_DIR = PACKAGE_DIR / "web"
DIALECT_OPTIONS_MARKER = "<!-- dialect options -->"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def index(state: State) -> HTMLResponse:
    settings = state.settings
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    filled = {
        DIALECT_OPTIONS_MARKER: dialect_options(settings.sql_dialect),
        # The counters show the gateway's own caps, whatever this deployment set them to.
        "<!-- schema limit -->": str(settings.max_schema_chars),
        "<!-- schema limit text -->": f"{settings.max_schema_chars:,}",
        "<!-- question limit -->": str(settings.max_question_chars),
        "<!-- question limit text -->": f"{settings.max_question_chars:,}",
    }
    for marker, value in filled.items():
        page = page.replace(marker, value)
    return HTMLResponse(page, headers={"cache-control": "no-cache"})


def dialect_options(default: str) -> str:
    """One <option> per offered dialect, named for a person, the default selected."""
    return "\n".join(
        f'<option value="{escape(name)}"{" selected" if name == default else ""}>{escape(dialect_label(name))}</option>'
        for name in in_menu_order(SUPPORTED_DIALECTS))
