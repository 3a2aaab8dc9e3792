"""``/api/v1/alerts``: list and read alerts (viewer and up), acknowledge and resolve them.

Transitions need the auditor or admin role (the ``prove`` permission's roles: the people who
investigate). Like every read of the audit trail, each call is self-audited
(``keeptrail.alerts_read``, ``keeptrail.alert_read``), and a transition is recorded as the
``alert.acknowledged`` / ``alert.resolved`` event with the token's name as the actor — the same
event ``keeptrail alerts ack|resolve`` writes. The answer comes after the event is committed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Query
from starlette.concurrency import run_in_threadpool

from keeptrail.detect.alert_actions import check_comment, transition_event
from keeptrail.detect.alerts import STATUSES, Alert, AlertStore
from keeptrail.errors import UserError
from keeptrail.notify.outbox import deliveries_of
from keeptrail.query.timerange import parse_time_bound
from keeptrail.server import audit
from keeptrail.server.auth import Principal
from keeptrail.server.deps import Prover, Reader, StateDep
from keeptrail.server.errors import ApiError
from keeptrail.server.responses import Json
from keeptrail.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["alerts"])
ALERTS_READ: Final = "keeptrail.alerts_read"
ALERT_READ: Final = "keeptrail.alert_read"
MAX_LIMIT: Final = 500


@contextmanager
def _alerts(state: ServerState) -> Iterator[AlertStore]:
    """The server's alert store (one connection, shared by requests under its lock)."""
    yield state.alerts


@router.get("/alerts", summary="Alerts, most recently seen first")
async def list_alerts(
    principal: Reader,
    state: StateDep,
    status: Annotated[str | None, Query(description=f"one of {', '.join(STATUSES)}")] = None,
    rule: Annotated[str | None, Query(description="a rule id")] = None,
    since: Annotated[str | None, Query(description="last seen after: 24h, 7d, a date")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> Json:
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_request", f"status must be one of {', '.join(STATUSES)}")
    try:
        lo = parse_time_bound(since, now_us=_now()) if since else None
    except ValueError as exc:
        raise ApiError(400, "invalid_time", str(exc)) from None

    def read() -> list[Alert]:
        with _alerts(state) as store:
            return store.list(status=status, rule_id=rule, since=lo, limit=limit)

    alerts = await run_in_threadpool(read)
    details: dict[str, Any] = {
        "status": status,
        "rule": rule,
        "since": since,
        "limit": limit,
        "results": len(alerts),
    }
    await state.append(
        [
            audit.by_principal(
                principal, ALERTS_READ, resource="alerts", resource_type="alerts", details=details
            )
        ]
    )
    return Json({"alerts": [a.to_dict() for a in alerts], "count": len(alerts)})


@router.get("/alerts/{alert_id}", summary="One alert with its evidence and history")
async def get_alert(alert_id: str, principal: Reader, state: StateDep) -> Json:
    alert = await run_in_threadpool(_get, state, alert_id)
    await state.append(
        [
            audit.by_principal(
                principal,
                ALERT_READ,
                resource=alert_id[:64],
                resource_type="alert",
                outcome="success" if alert else "failure",
                reason=None if alert else "not_found",
            )
        ]
    )
    if alert is None:
        raise ApiError(404, "not_found", f"no alert with id {alert_id[:64]!r}")
    deliveries = await run_in_threadpool(
        deliveries_of, state.settings.directory, alert.id, state.settings.store
    )
    return Json({**alert.to_dict(), "deliveries": deliveries})


async def _transition(
    principal: Principal, state: ServerState, alert_id: str, status: str, body: Any
) -> Json:
    if not isinstance(body, dict) or not isinstance(body.get("comment"), str):
        raise ApiError(400, "invalid_request", 'send {"comment": "why"} as JSON')
    try:
        comment = check_comment(body["comment"])
    except UserError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None

    def move() -> tuple[Alert, Alert]:
        with _alerts(state) as store:
            before = store.get(alert_id)
            if before is None:
                raise ApiError(404, "not_found", f"no alert with id {alert_id[:64]!r}")
            try:
                after = store.transition(alert_id, status, by=principal.name, comment=comment)
            except UserError as exc:
                raise ApiError(409, "invalid_transition", str(exc)) from None
            return before, after

    before, after = await run_in_threadpool(move)
    await state.append(
        [
            transition_event(
                after,
                before.status,
                by=principal.name,
                comment=comment,
                source_ip=principal.client_ip,
            )
        ]
    )
    return Json(after.to_dict())


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert (auditor, admin)")
async def ack(
    alert_id: str,
    principal: Prover,
    state: StateDep,
    body: Annotated[Any, Body(description='{"comment": "why"}')] = None,
) -> Json:
    return await _transition(principal, state, alert_id, "acknowledged", body)


@router.post("/alerts/{alert_id}/resolve", summary="Resolve an alert (auditor, admin)")
async def resolve(
    alert_id: str,
    principal: Prover,
    state: StateDep,
    body: Annotated[Any, Body(description='{"comment": "why"}')] = None,
) -> Json:
    return await _transition(principal, state, alert_id, "resolved", body)


def _get(state: ServerState, alert_id: str) -> Alert | None:
    with _alerts(state) as store:
        return store.get(alert_id)


def _now() -> int:
    return time.time_ns() // 1000
