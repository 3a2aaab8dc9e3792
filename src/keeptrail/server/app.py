"""The app factory: ``create_app(settings)`` builds the FastAPI app; its lifespan opens the store.

Nothing happens at import time. The lifespan opens the store (writer first: it creates and
migrates the database and the ledger key), the token database and the metrics, records the
configuration the server started with as a ``keeptrail.config_load`` audit event, starts any
collection sources handed in (single-node mode, see ``sources``), and closes everything in
reverse on shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keeptrail import __version__
from keeptrail.errors import UserError
from keeptrail.notify import server_hook as notify_hook
from keeptrail.notify.dispatcher import Notifier
from keeptrail.server import audit, errors, routes_alerts, routes_permissions
from keeptrail.server.api import admin, events, export, health, ledger
from keeptrail.server.metrics import Metrics
from keeptrail.server.settings import Settings
from keeptrail.server.state import ServerState, Source


def create_app(settings: Settings, *, sources: Sequence[Source] = ()) -> FastAPI:
    """The Keeptrail server app.

    ``sources`` is the single-node hook: each is an async function of the
    :class:`~keeptrail.server.state.ServerState` that collects events and commits them with
    ``await state.append(events, positions)``; they run as tasks for the app's lifetime and
    are cancelled at shutdown. The agent's sources plug in here.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            state = await run_in_threadpool(ServerState.open, settings)
        except UserError as exc:
            app.state.startup_error = exc  # runner.serve reports it in one line, exit 2
            raise
        app.state.keeptrail = state
        tasks: list[asyncio.Task[None]] = []
        notifier: Notifier | None = None
        try:
            notifier = notify_hook.attach(state, asyncio.get_running_loop())
            await state.append(
                [
                    audit.audit_event(
                        audit.CONFIG_LOAD,
                        actor=audit.local_actor(),
                        actor_type="system",
                        resource="server",
                        resource_type="config",
                        details=settings.summary(),
                    )
                ]
            )
            tasks = [asyncio.create_task(source(state)) for source in sources]
            tasks.append(asyncio.create_task(state.detect_clock()))
            state.ready = True
            yield
        except UserError as exc:
            if not state.ready:  # failed before serving (e.g. a [notify] secret went missing)
                app.state.startup_error = exc
            raise
        finally:
            state.ready = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if notifier is not None:
                await run_in_threadpool(notifier.close)
            await run_in_threadpool(state.close)

    app = FastAPI(
        title="Keeptrail",
        version=__version__,
        description="Ingest, search and prove access-audit events. See docs/api.md.",
        lifespan=lifespan,
        docs_url=None,  # served by api/health.py without a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    errors.install(app)
    for module in (events, ledger, export, admin, health):
        app.include_router(module.router)
    app.include_router(routes_alerts.router)
    app.include_router(routes_permissions.router)
    app.add_middleware(_RequestCounter)
    return app


class _RequestCounter:
    """Counts responses by route template and status (a plain ASGI middleware: cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            state: Any = getattr(scope.get("app"), "state", None)
            server = getattr(state, "keeptrail", None) if state is not None else None
            metrics: Metrics | None = getattr(server, "metrics", None)
            if metrics is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                metrics.requests.labels(route, str(status)).inc()
