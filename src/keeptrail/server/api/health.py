"""Health, readiness, Prometheus metrics and the API reference page.

``/healthz`` answers while the process runs; ``/readyz`` only once the store is open and a
read through it works. ``/metrics`` is the Prometheus text format (open unless
``metrics_public = false``, then it needs a viewer token). ``/docs`` is a page rendered here
from the OpenAPI document, with no script and nothing fetched from elsewhere: FastAPI's default
Swagger page loads its assets from a CDN, and nothing may be downloaded at run time.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import HTMLResponse, Response

from keeptrail.server.auth import authenticate, authorize
from keeptrail.server.deps import StateDep, client_ip
from keeptrail.server.errors import ApiError
from keeptrail.server.responses import Json

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Json:
    return Json({"status": "ok"})


@router.get("/readyz", summary="Readiness: the store is open and readable")
async def readyz(state: StateDep) -> Json:
    if not state.ready:
        return Json({"status": "starting"}, status_code=503)
    try:
        size = await state.stores.read(lambda s: s.ledger_frontier().size)
    except Exception as exc:  # any store failure means "not ready", with the reason
        return Json({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    return Json({"status": "ready", "events": size})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request, state: StateDep) -> Response:
    if not state.settings.metrics_public:
        caller = authenticate(
            state.tokens, request.headers.get("authorization"), client_ip(request)
        )
        authorize(caller, "read")
    try:
        await state.refresh_store_metrics()
    except Exception as exc:  # keep serving the counters even if the store is unwell
        raise ApiError(503, "unavailable", f"store unavailable: {type(exc).__name__}") from exc
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render_reference(request.app.openapi()))


def render_reference(spec: dict[str, Any]) -> str:
    """A plain HTML reference of every operation: method, path, summary, parameters."""
    esc = html.escape
    info = spec.get("info", {})
    rows: list[str] = []
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            params = ", ".join(
                f"{esc(p['name'])} ({esc(p.get('in', ''))})" for p in op.get("parameters", [])
            )
            rows.append(
                f"<tr><td><code>{esc(method.upper())}</code></td><td><code>{esc(path)}</code>"
                f"</td><td>{esc(op.get('summary', ''))}</td><td>{params}</td></tr>"
            )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(info.get('title', 'API'))} API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;"
        "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>{esc(info.get('title', 'API'))} {esc(str(info.get('version', '')))}</h1>"
        "<p>Every <code>/api/v1</code> call takes <code>Authorization: Bearer &lt;token&gt;"
        "</code>. The machine-readable description is <a href=/openapi.json>/openapi.json</a>."
        "</p><table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
