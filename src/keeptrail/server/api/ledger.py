"""The ledger over HTTP: the latest signed checkpoint and inclusion proofs (docs/ledger.md).

Both call the ledger's own functions (``Store.latest_checkpoint``, ``ledger.bundle``), so a
proof fetched here is byte for byte what ``keeptrail prove`` writes and ``keeptrail
verify-proof`` checks. Checkpoint reads are not self-audited: monitors and witnesses poll them,
and recording each poll would grow the tree it reports on.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from keeptrail.event import format_time
from keeptrail.ledger.bundle import ProofError, inclusion_bundle
from keeptrail.server import audit
from keeptrail.server.deps import Prover, Reader, StateDep
from keeptrail.server.errors import ApiError
from keeptrail.server.responses import Json
from keeptrail.store import Store
from keeptrail.store.contract import StoredCheckpoint

router = APIRouter(prefix="/api/v1", tags=["ledger"])


@router.get(
    "/checkpoint",
    summary="The latest signed checkpoint (JSON, or the signed note with Accept: text/plain)",
)
async def checkpoint(request: Request, principal: Reader, state: StateDep) -> Response:
    def latest(store: Store) -> tuple[StoredCheckpoint | None, str | None]:
        verifier = store.verifier
        return store.latest_checkpoint(), verifier.key if verifier else None

    found, verifier_key = await state.stores.read(latest)
    if found is None:
        raise ApiError(404, "not_found", "no checkpoint has been signed yet: ingest something")
    if "text/plain" in request.headers.get("accept", ""):
        return PlainTextResponse(found.note)
    return Json(
        {
            "size": found.size,
            "root": base64.b64encode(found.root).decode(),
            "created_at": format_time(found.created_at),
            "note": found.note,
            "verifier_key": verifier_key,
        }
    )


@router.get("/events/{event_id}/proof", summary="Inclusion proof bundle of one event")
async def proof(event_id: str, principal: Prover, state: StateDep) -> Json:
    def build(store: Store) -> tuple[dict[str, object] | None, str | None]:
        if store.ledger_leaf(event_id) is None:
            return None, "not_found"
        try:
            return inclusion_bundle(store, event_id), None
        except ProofError as exc:
            return None, str(exc)

    bundle, problem = await state.stores.read(build)
    await state.append(
        [
            audit.by_principal(
                principal,
                audit.PROOF,
                resource=event_id[:64],
                resource_type="event",
                outcome="success" if bundle else "failure",
                reason=None if bundle else "unavailable",
            )
        ]
    )
    if bundle is None:
        if problem == "not_found":
            raise ApiError(404, "not_found", f"no event with id {event_id[:64]!r} in the ledger")
        raise ApiError(409, "proof_unavailable", problem or "no proof")
    return Json(bundle)
