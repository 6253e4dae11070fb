"""Availability notices: matching, exactly-once delivery, the three channels, tokens kept secret.

Every server here (PostgreSQL, SMTP, the webhook receiver) runs on 127.0.0.1 and stops at the
end of its test.
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import hmac
import http.server
import json
import logging
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pystac
import pytest

from mus_lab.errors import NoticeError
from mus_lab.services import notices
from mus_lab.services.notices import Backoff, Notifier, SmtpSettings

ATOM = "{http://www.w3.org/2005/Atom}"
S2 = "sentinel-2-l2a"


def _item(item_id: str, lon: float, lat: float, *, collection: str = S2, cloud: float = 5.0):
    d = 0.05
    box = [lon - d, lat - d, lon + d, lat + d]
    ring = [
        [box[0], box[1]],
        [box[2], box[1]],
        [box[2], box[3]],
        [box[0], box[3]],
        [box[0], box[1]],
    ]
    return pystac.Item(
        item_id,
        {"type": "Polygon", "coordinates": [ring]},
        box,
        dt.datetime(2024, 6, 1, 10, 30, tzinfo=dt.UTC),
        {"eo:cloud_cover": cloud},
        collection=collection,
    )


@pytest.fixture
def db(pg_cluster: Any) -> str:
    from tests._postgres import new_database

    return new_database(pg_cluster, "notices")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Receiver:
    """A webhook receiver on 127.0.0.1 that fails its first POSTs, then checks signatures."""

    def __init__(self, secret: str, fail_first: int = 1) -> None:
        self.secret = secret.encode()
        self.fail_left = fail_first
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.requests = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if receiver.fail_left > 0:
                    receiver.fail_left -= 1
                    self.send_response(503)
                elif hmac.compare_digest(
                    self.headers.get(notices.SIGNATURE_HEADER, ""),
                    "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest(),
                ):
                    receiver.accepted.append((dict(self.headers), body))
                    self.send_response(204)
                else:
                    self.send_response(401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[bytes]]]:
    pytest.importorskip("aiosmtpd", reason="the dev extra is not installed")
    from aiosmtpd.controller import Controller

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_each_matching_subscription_gets_one_notice_per_item(db: str, tmp_path: Path) -> None:
    from mus_lab.catalog._pgstac import PgstacHoldings

    a = notices.subscribe(db, bbox=(1, 43, 2, 44), collections=S2, atom=tmp_path / "a.xml")
    token = a.token
    assert token is not None
    b = notices.subscribe(db, bbox=(10, 50, 11, 51), atom=tmp_path / "b.xml", token=token)
    c = notices.subscribe(
        db, bbox=(1, 43, 2, 44), filter="eo:cloud_cover < 10", atom=tmp_path / "c.xml", token=token
    )
    items = [
        _item("cloudy", 1.5, 43.5, cloud=50.0),
        _item("clear", 1.6, 43.6, cloud=5.0),
        _item("radar", 1.5, 43.5, collection="sentinel-1-grd", cloud=0.0),
        _item("far", 20.0, 10.0),
    ]
    with Notifier(db, backoff=Backoff(first=0.05)), PgstacHoldings(db) as holdings:
        holdings.ingest(items)
        holdings.ingest(items[:2])  # a retried harvest: no second notice
    holdings_after = PgstacHoldings(db)
    holdings_after.ingest([_item("after-detach", 1.5, 43.5)])  # the notifier is detached
    holdings_after.close()

    def sent(sub: notices.Subscription) -> list[str]:
        rows = notices.deliveries(db, sub, token=token)
        assert all(r.status == "sent" and r.attempts == 1 for r in rows)
        return sorted(r.item for r in rows)

    assert sent(a) == ["clear", "cloudy"]  # bbox + collection
    assert sent(b) == []  # another area
    assert sent(c) == ["clear", "radar"]  # the CQL2 filter drops the cloudy one
    assert not (tmp_path / "b.xml").exists()
    feed = ET.parse(tmp_path / "a.xml").getroot()
    assert (
        feed.tag == f"{ATOM}feed" and feed.findtext(f"{ATOM}id") and feed.findtext(f"{ATOM}updated")
    )
    entries = feed.findall(f"{ATOM}entry")
    assert sorted(e.findtext(f"{ATOM}title") or "" for e in entries) == [
        f"New item clear in {S2}",
        f"New item cloudy in {S2}",
    ]
    assert all(e.findtext(f"{ATOM}id") and e.findtext(f"{ATOM}updated") for e in entries)
    assert "2024-06-01T10:30:00Z" in (entries[0].findtext(f"{ATOM}summary") or "")
    assert notices.atom_feed(db, a.id).count("<entry>") == 2
    assert [s.id for s in notices.subscriptions(db, token=token)] == [a.id, b.id, c.id]
    notices.unsubscribe(db, b, token=token)
    assert [s.id for s in notices.subscriptions(db, token=token)] == [a.id, c.id]


def test_published_product_reaches_a_signed_webhook_once_despite_a_failure(
    db: str, tmp_path: Path
) -> None:
    import xarray as xr
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_zeros

    from mus_lab.publish import write_collection

    root = tmp_path / "products"
    pystac.Catalog("c", "demo").normalize_and_save(str(root), pystac.CatalogType.SELF_CONTAINED)
    gbox = GeoBox.from_bbox(
        (500000, 4000000, 500640, 4000640), "EPSG:32631", resolution=10
    )  # about 3.0 E, 36.1 N
    ds = xr.Dataset({"hazard": xr_zeros(gbox, dtype="float32")})
    secret = "a-webhook-secret-of-some-length"
    sub = notices.subscribe(db, bbox=(2.9, 36.0, 3.1, 36.3), webhook="http://x", secret=secret)
    # Point the subscription at this test's receiver (its port is known only now).
    with _Receiver(secret, fail_first=1) as receiver:
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "UPDATE notices.subscriptions SET target = %s WHERE id = %s",
                (receiver.url, sub.id),
            )
        with Notifier(db, backoff=Backoff(first=0.05, max_wait=5)):
            write_collection(ds, root, "demo-product", level="L4-demo")
        assert receiver.requests == 2 and len(receiver.accepted) == 1
        headers, body = receiver.accepted[0]
        notice = json.loads(body)
        assert notice["item"] == "demo-product-summary"
        assert notice["collection"] == "demo-product"
        assert notice["link"].startswith("file://") and notice["link"].endswith(".json")
        assert len(notice["bbox"]) == 4 and notice["datetime"]
        assert headers[notices.DELIVERY_HEADER] == f"{sub.id}:demo-product:demo-product-summary"
        assert secret not in body.decode() and secret not in json.dumps(headers)
        # Announced again (a re-run): nothing new is sent.
        again = Notifier(db).notify(
            pystac.Collection.from_file(str(root / "demo-product" / "collection.json")).get_items()
        )
        assert again.queued == 0 and receiver.requests == 2
    assert sub.token is not None
    (row,) = notices.deliveries(db, sub, token=sub.token)
    assert (row.status, row.attempts, row.error) == ("sent", 2, None)


def test_email_notice_and_test_notice(
    db: str, tmp_path: Path, smtp_server: tuple[int, list[bytes]]
) -> None:
    from mus_lab.catalog import StaticHoldings

    port, received = smtp_server
    smtp = SmtpSettings(port=port, sender="lab@example.org")
    sub = notices.subscribe(db, bbox="1,43,2,44", email="analyst@example.org")
    assert sub.token is not None
    with Notifier(db, smtp=smtp):
        StaticHoldings(tmp_path / "holdings").ingest([_item("S2A_1", 1.5, 43.5)])
    assert len(received) == 1
    msg = email.message_from_bytes(received[0])
    text = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert msg["To"] == "analyst@example.org" and "S2A_1" in msg["Subject"]
    for part in ("S2A_1", S2, "2024-06-01T10:30:00Z", "1.45, 43.45, 1.55, 43.55", "file://"):
        assert part in text
    assert sub.token.reveal() not in received[0].decode()
    notices.send_test(db, sub.id, token=sub.token, smtp=smtp)
    assert len(received) == 2 and b"mus-lab-test-notice" in received[1]


def test_tokens_and_secrets_never_shown(
    db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from typer.testing import CliRunner

    from mus_lab.cli import app

    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    token_file, secret_file = tmp_path / "token", tmp_path / "secret"
    dead = f"http://127.0.0.1:{_free_port()}/hook"
    args = ["notices", "subscribe", db, "--bbox", "1,43,2,44", "-c", S2]
    out = runner.invoke(
        app,
        [
            *args,
            "--webhook",
            dead,
            "--secret-file",
            str(secret_file),
            "--token-file",
            str(token_file),
        ],
    )
    assert out.exit_code == 0, out.output
    token, secret = token_file.read_text().strip(), secret_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    listed = runner.invoke(app, ["notices", "list", db, "--token-file", str(token_file)])
    assert listed.exit_code == 0 and "webhook http://127.0.0.1" in listed.output
    sid = int(listed.output.split(":")[0])
    tested = runner.invoke(app, ["notices", "test", db, str(sid), "--token-file", str(token_file)])
    assert tested.exit_code == 2 and "cannot be reached" in tested.output
    wrong = tmp_path / "wrong"
    wrong.write_text("x" * 40)
    refused = runner.invoke(app, ["notices", "test", db, str(sid), "--token-file", str(wrong)])
    assert refused.exit_code == 2 and "owned by this token" in refused.output
    shown: list[str] = [out.output, listed.output, tested.output, refused.output, caplog.text]
    # The Python API: reprs, the failed delivery's error, the exceptions.
    sub = notices.subscribe(
        db, bbox=(1, 43, 2, 44), webhook=dead, secret=secret, token=token, collections=[S2]
    )
    shown += [repr(sub), str(sub), sub.describe(), repr(sub.token), f"{sub.secret}"]
    report = Notifier(db, backoff=Backoff(attempts=2, first=0.01, max_wait=2)).notify(
        [_item("S2B_2", 1.5, 43.5)]
    )
    assert (report.queued, report.sent, report.failed) == (2, 0, 2)
    shown += [d.error or "" for d in notices.deliveries(db, sub, token=token)]
    for call in (
        lambda: notices.subscriptions(db, token="short"),
        lambda: notices.unsubscribe(db, sub.id, token="y" * 40),
        lambda: notices.send_test(db, sub.id, token=token),
        lambda: notices.subscribe(db, bbox=(1, 43, 2, 44), webhook=dead, secret="too-short"),
    ):
        with pytest.raises(NoticeError) as info:
            call()
        shown.append(str(info.value))
    shown.append(caplog.text)
    for text in shown:
        assert token not in text and secret not in text
    with pytest.raises(TypeError):
        __import__("pickle").dumps(sub.token)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bbox": (1, 43, 2, 44)}, "exactly one channel"),
        ({"bbox": (1, 43, 2, 44), "email": "a@b.org", "atom": "f.xml"}, "exactly one channel"),
        ({"email": "a@b.org"}, "area of interest"),
        ({"bbox": (1, 43, 2, 44), "email": "not an address"}, "e-mail address"),
        ({"bbox": (1, 43, 2, 44), "webhook": "ftp://host/x"}, "webhook URL"),
        ({"bbox": (1, 43, 2, 44), "email": "a@b.org", "filter": "cloud <<< 3"}, "CQL2"),
    ],
)
def test_bad_subscriptions_say_what_to_fix(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(NoticeError, match=message):
        notices.subscribe("postgresql://nobody@127.0.0.1:1/none", **kwargs)


def test_cli_ingest_with_notify(db: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mus_lab.catalog import StaticHoldings
    from mus_lab.cli import app

    StaticHoldings(tmp_path / "held").ingest([_item("S2A_3", 1.5, 43.5), _item("S2A_4", 9, 9)])
    sub = notices.subscribe(db, bbox=(1, 43, 2, 44), atom=tmp_path / "feed.xml")
    args = ["holdings", "ingest", db, str(tmp_path / "held"), "--notify", db]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    entries = ET.parse(tmp_path / "feed.xml").getroot().findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [f"New item S2A_3 in {S2}"]
    link = entries[0].find(f"{ATOM}link")
    assert link is not None and link.get("href", "").endswith("/S2A_3/S2A_3.json")
    assert sub.token is not None and sub.token.reveal() not in out.output
