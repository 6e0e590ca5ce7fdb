"""The pages: one HTML shell each, filled in the browser by its script from ``api/``. A shell
holds no data (the token lives in the browser), so it is served to anyone; its links are
relative to a ``<base>`` of wherever the dashboard is mounted."""

from html import escape
from pathlib import Path
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

STATIC = Path(__file__).parent / "static"
SHELL = Template((STATIC / "page.html").read_text())
SECURITY_HEADERS = {
    # Its own scripts and styles only: nothing fetched from elsewhere, no inline script.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def pages_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def fleet(request: Request) -> HTMLResponse:
        return _page(request, "fleet", "Fleet")

    @router.get("/sessions/{session_id}")
    async def session(request: Request, session_id: str) -> HTMLResponse:
        return _page(request, "session", f"Session {session_id}", session_id)

    @router.get("/dead-letters")
    async def dead_letters(request: Request) -> HTMLResponse:
        return _page(request, "dead_letters", "Dead letters")

    @router.get("/tasks")
    async def tasks(request: Request) -> HTMLResponse:
        return _page(request, "tasks", "Tasks")

    return router


def _page(request: Request, page: str, title: str, subject: str = "") -> HTMLResponse:
    base = request.scope.get("root_path", "").rstrip("/") + "/"
    html = SHELL.substitute(
        base=escape(base), page=page, title=escape(title), subject=escape(subject)
    )
    return HTMLResponse(html, headers=SECURITY_HEADERS)
