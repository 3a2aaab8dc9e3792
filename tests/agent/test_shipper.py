"""The shipper against a real HTTP server on 127.0.0.1: retry, split, quarantine, resume."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import orjson

from keeptrail.agent.shipper import Shipper, ShipperSettings
from keeptrail.agent.spool import Spool
from keeptrail.agent.status import AgentStatus
from tests.agent.httpstub import IngestStub, serve
from tests.agent.test_spool import make_events


def shipper_for(spool: Spool, url: str, tmp_path: Path, token: str = "t0ken") -> Shipper:
    settings = ShipperSettings(
        url=url,
        token=token,
        dead_letter_dir=tmp_path / "dead-letter",
        batch_size=100,
        linger=0.05,
        backoff_initial=0.02,
        backoff_max=0.1,
        auth_retry=0.1,
        timeout=5,
    )
    return Shipper(spool, settings, AgentStatus(host="h"), threading.Event())


def test_each_answer_in_turn(tmp_path: Path) -> None:
    """200, 400, 413, 429 and 500 in turn: delivered once, split, quarantined, retried."""
    spool = Spool(tmp_path / "spool.db")
    events = make_events(8)
    events[5].raw = "poison"
    spool.append(events)
    stub = IngestStub(script=[429, 500, 413])
    stub.reject_marker = "poison"
    with serve(stub):
        shipper = shipper_for(spool, stub.url, tmp_path)
        assert shipper.ship_once() == 7
    codes = [code for _, code in stub.requests]
    assert codes[:3] == [429, 500, 413]
    assert 400 in codes
    assert codes[-1] == 200
    assert sorted(stub.raws()) == sorted(e.raw for e in events if e.raw != "poison")
    assert stub.received == 7  # nothing delivered twice
    assert spool.depth[0] == 0
    assert shipper.status.retries == 2
    assert shipper.status.quarantined == 1
    dead = list((tmp_path / "dead-letter").glob("*.ndjson"))
    assert len(dead) == 1
    assert orjson.loads(dead[0].read_bytes())["raw"] == "poison"
    reason = orjson.loads(dead[0].with_suffix(".reason.json").read_bytes())
    assert reason["status"] == 400
    spool.close()


def test_a_400_that_is_not_about_the_events_is_retried(tmp_path: Path) -> None:
    """A 400 not saying invalid_events (a malformed body, a proxy) is retried, never quarantined."""
    spool = Spool(tmp_path / "spool.db")
    spool.append(make_events(3))
    stub = IngestStub(script=[400])
    stub.bad_request_error = "malformed_body"
    with serve(stub):
        shipper = shipper_for(spool, stub.url, tmp_path)
        assert shipper.ship_once() == 3
    assert [code for _, code in stub.requests] == [400, 200]
    assert shipper.status.quarantined == 0
    assert not list((tmp_path / "dead-letter").glob("*.ndjson"))
    spool.close()


def test_too_large_batches_are_split_until_accepted(tmp_path: Path) -> None:
    """A 413 halves the batch until the server takes it; every event arrives once, in order."""
    spool = Spool(tmp_path / "spool.db")
    events = make_events(50)
    spool.append(events)
    stub = IngestStub()
    stub.max_events = 7
    with serve(stub):
        shipper_for(spool, stub.url, tmp_path).ship_once()
    accepted = [n for n, code in stub.requests if code == 200]
    assert sum(accepted) == 50
    assert max(accepted) <= 7
    assert [d["raw"] for d in stub.stored.values()] == [e.raw for e in events]
    spool.close()


def test_refused_token_keeps_events_spooled(tmp_path: Path) -> None:
    """A 401 pauses shipping and flags the status; the events stay in the spool."""
    spool = Spool(tmp_path / "spool.db")
    spool.append(make_events(5))
    stub = IngestStub(token="right")
    with serve(stub):
        shipper = shipper_for(spool, stub.url, tmp_path, token="wrong")
        thread = threading.Thread(target=shipper.run)
        thread.start()
        shipper.stop.wait(0.5)
        shipper.stop.set()
        thread.join(5)
    assert shipper.status.auth_failed
    assert "401" in (shipper.status.last_error or "")
    assert all(code == 401 for _, code in stub.requests)
    assert len(stub.requests) >= 2  # retried after auth_retry
    assert spool.depth[0] == 5
    spool.close()


def test_server_down_then_up_delivers_after_restart(tmp_path: Path) -> None:
    """With no server the events wait in the spool; a new shipper (restart) delivers them."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{s.getsockname()[1]}"
    spool = Spool(tmp_path / "spool.db")
    events = make_events(20)
    spool.append(events)
    shipper = shipper_for(spool, dead_url, tmp_path)
    thread = threading.Thread(target=shipper.run)
    thread.start()
    shipper.stop.wait(0.4)
    shipper.stop.set()
    thread.join(5)
    assert shipper.status.retries >= 2
    assert spool.depth[0] == 20
    spool.close()
    spool = Spool(tmp_path / "spool.db")  # the agent restarted
    stub = IngestStub()
    with serve(stub):
        shipper_for(spool, stub.url, tmp_path).ship_once()
    assert sorted(stub.raws()) == sorted(e.raw for e in events)
    assert spool.depth[0] == 0
    spool.close()


def test_the_token_is_never_in_repr(tmp_path: Path) -> None:
    """Settings printed in a log or traceback do not show the token."""
    settings = ShipperSettings(url="https://x", token="s3cret", dead_letter_dir=tmp_path)
    assert "s3cret" not in repr(settings)
