"""The dashboard: `GET /` serves api/static/index.html, `GET /static/{asset}` its scripts and
styles, and `GET /dashboard/tokens.json` the token registry the page's form offers. Plain
files, no build step; the page talks to the API it came from (POST /api/orders/execute,
WS /api/orders/stream/all, WS /api/orders/{id}/stream).

Only the files listed here are served, so no request path can reach anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from api.deps import edge
from api.errors import ApiError

STATIC: Final = Path(__file__).parent.parent / "static"
ASSETS: Final = {"app.js": "text/javascript", "plot.js": "text/javascript",
                 "market.js": "text/javascript", "app.css": "text/css"}
_NO_CACHE: Final = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=_NO_CACHE)


@router.get("/static/{asset}")
async def asset(asset: str) -> FileResponse:
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise ApiError(404, "not_found", f"no dashboard asset {asset!r}")
    return FileResponse(STATIC / asset, media_type=media_type, headers=_NO_CACHE)


@router.get("/dashboard/tokens.json")
async def tokens(request: Request) -> list[dict[str, str | int]]:
    """The tokens this edge accepts, so the page never hard-codes mints or decimals."""
    return [{"symbol": token.symbol, "mint": token.mint, "decimals": token.decimals}
            for token in edge(request).registry]
