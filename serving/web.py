"""The web page, mounted by the BentoML service under ``/ui`` (no separate web server): one HTML
file with its CSS and JS inline (no build step, no request to anything but the service itself,
which its Content-Security-Policy enforces in the browser), and the evaluation plot."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

PAGE = Path(__file__).resolve().parent / "web" / "index.html"
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def ui_app(plot: Callable[[], Path | None]) -> Starlette:
    """``plot()``: where the newest evaluation plot is, or None."""

    async def page(request):
        if not request.url.path.endswith("/"):
            return RedirectResponse(request.url.path + "/")
        return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers=HEADERS)

    async def evaluation_png(request):
        f = plot()
        if f is None or not f.is_file():
            return JSONResponse({"error": "no evaluation plot yet: run `coldrec evaluate`"}, status_code=404)
        return FileResponse(f, media_type="image/png", headers=HEADERS)

    return Starlette(routes=[Route("/", page), Route("/evaluation.png", evaluation_png)])
