"""A small client of the query API, for ``keeptrail search/stats --server URL --token TOKEN``.

It returns the same library types as a local store (:class:`~keeptrail.store.SearchPage`,
:class:`~keeptrail.store.Stats`), so the commands format remote and local results with the same
code. Server errors become :class:`~keeptrail.errors.UserError` with the server's message (an
invalid query becomes a :class:`~keeptrail.query.QueryError`, rendered with its caret). Only
``httpx`` is imported: this module does not load the server.

A token may be given as ``@/path/to/file`` so it stays out of shell history and ``ps``;
``$KEEPTRAIL_CA_CERT`` names a CA bundle for servers with a private certificate.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from keeptrail.errors import UserError
from keeptrail.event import from_document, parse_time
from keeptrail.query.errors import QueryError
from keeptrail.store.contract import SearchPage, Stats

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def read_token(value: str | None) -> str:
    """The token itself, reading ``@file`` forms; a missing token is a clear error."""
    if not value:
        raise UserError("--server needs a token: --token TOKEN, --token @FILE or $KEEPTRAIL_TOKEN")
    if value.startswith("@"):
        try:
            return Path(value[1:]).expanduser().read_text().strip()
        except OSError as exc:
            raise UserError(f"cannot read the token file {value[1:]}: {exc.strerror}") from exc
    return value.strip()


def _client(server: str, token: str) -> httpx.Client:
    ca = os.environ.get("KEEPTRAIL_CA_CERT")
    return httpx.Client(
        base_url=server.rstrip("/"),
        headers={"Authorization": f"Bearer {token}", "User-Agent": "keeptrail-cli"},
        timeout=TIMEOUT,
        verify=ca if ca else True,
    )


def _get(server: str, token: str, path: str, params: dict[str, Any]) -> Any:
    clean = {k: v for k, v in params.items() if v is not None}
    try:
        with _client(server, read_token(token)) as client:
            response = client.get(path, params=clean)
    except httpx.HTTPError as exc:
        raise UserError(f"cannot reach {server}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and body is not None:
        return body
    if isinstance(body, dict) and body.get("error") == "invalid_query":
        position = body.get("position")
        at = position if type(position) is int else 0
        raise QueryError(str(body.get("message")), at, params["q"])
    message = body.get("message") if isinstance(body, dict) else None
    raise UserError(f"{server} answered {response.status_code}: {message or response.text[:200]}")


def remote_search(
    server: str,
    token: str,
    query: str,
    *,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
) -> SearchPage:
    """One page of a search on a server."""
    params = {"q": query, "since": since, "until": until, "limit": limit, "cursor": cursor}
    body = _get(server, token, "/api/v1/events", params)
    try:
        return SearchPage(
            [from_document(d) for d in body["events"]],
            body.get("next_cursor"),
            stopped_early=body.get("stopped_early") is True,
            scanned=int(body.get("scanned") or 0),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{server} answered with an unexpected search response") from exc


def remote_stats(
    server: str, token: str, *, since: str | None, until: str | None, top: int
) -> Stats:
    """A server's statistics as the same :class:`Stats` a local store returns."""
    body = _get(server, token, "/api/v1/stats", {"since": since, "until": until, "top": top})
    return Stats(
        total=body["total"],
        first_time=parse_time(body["first"]) if body.get("first") else None,
        last_time=parse_time(body["last"]) if body.get("last") else None,
        by_category=list(body["by_category"].items()),
        by_action_outcome=[
            (r["action"], r["outcome"], r["count"]) for r in body["by_action_outcome"]
        ],
        top_actors=list(body["top_actors"].items()),
        top_sources=list(body["top_sources"].items()),
        top_hosts=list(body["top_hosts"].items()),
    )
