"""The analysts' web form: static files, no build step, no CDN."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gateway.settings import PACKAGE_DIR

WEB_DIR = PACKAGE_DIR / "web"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"cache-control": "no-cache"})
