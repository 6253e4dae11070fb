"""catalog.harvest against the fault-injecting file server: faults, resume, re-runs, bad input.

Every server binds 127.0.0.1 and stops with its fixture; backoffs are shortened through
:class:`RetryPolicy` so that the whole file runs in a few seconds.
"""

from __future__ import annotations

import _thread
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pystac
import pytest

from mus_lab.catalog import (
    PROVIDER_PROPERTY,
    HarvestReport,
    Pending,
    PlainAccess,
    Ready,
    RetryPolicy,
    StaticHoldings,
    harvest,
    register_access,
)
from mus_lab.catalog._access import HARVEST_PROPERTY
from mus_lab.catalog._harvest_fetch import parse_checksum, verify_file
from mus_lab.errors import CredentialsError, DiskFullError, HarvestError
from mus_lab.testing import Fault, FileServer

FAST = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, max_pending=30.0)
COLLECTION = "test-coll"


def multihash(data: bytes) -> str:
    return "1220" + hashlib.sha256(data).hexdigest()


def make_files(root: Path, n_items: int, keys: tuple[str, ...], size: int, seed: int = 0) -> None:
    """``root/<item>/<key>.bin`` files of ``size`` pseudo-random bytes."""
    rng = __import__("random").Random(seed)
    for i in range(n_items):
        folder = root / f"item-{i:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for key in keys:
            (folder / f"{key}.bin").write_bytes(rng.randbytes(size))


def make_items(
    server: FileServer,
    *,
    checksum: bool = True,
    size: bool = True,
    provider: str | None = None,
) -> list[pystac.Item]:
    """One item per folder of the server's root, one asset per file (href on the server)."""
    items: dict[str, pystac.Item] = {}
    for rel in server.files():
        folder, _, name = rel.partition("/")
        if folder not in items:
            props = {PROVIDER_PROPERTY: provider} if provider else {}
            items[folder] = pystac.Item(
                folder,
                {"type": "Point", "coordinates": [1.0, 2.0]},
                [1.0, 2.0, 1.0, 2.0],
                dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
                props,
                collection=COLLECTION,
            )
        data = (server.root / rel).read_bytes()
        extra: dict[str, object] = {}
        if checksum:
            extra["file:checksum"] = multihash(data)
        if size:
            extra["file:size"] = len(data)
        items[folder].add_asset(
            name.rpartition(".")[0],
            pystac.Asset(server.url_for(rel), roles=["data"], extra_fields=extra),
        )
    return list(items.values())


def check_dest(dest: Path, server: FileServer, items: list[pystac.Item]) -> None:
    """Every file present once under its item, verified, no .part; items held."""
    holdings = StaticHoldings(dest)
    for item in items:
        held = holdings.get(COLLECTION, item.id)
        assert held is not None, item.id
        for key, asset in held.assets.items():
            path = Path(asset.href)
            assert path.parent == dest / COLLECTION / item.id
            original = (server.root / item.id / path.name).read_bytes()
            assert path.read_bytes() == original
            assert asset.extra_fields["file:checksum"] == multihash(original)
            assert asset.extra_fields["file:size"] == len(original)
            assert asset.extra_fields["alternate"]["origin"]["href"] == item.assets[key].href
    assert not list(dest.rglob("*.part"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[FileServer]:
    """A server of 3 items x 2 assets of 200 KB."""
    make_files(tmp_path / "srv", 3, ("red", "nir"), 200_000)
    with FileServer(tmp_path / "srv") as server:
        yield server


def run(items: list[pystac.Item], dest: Path, **kw: object) -> HarvestReport:
    options: dict[str, object] = {"progress": False, "retries": FAST, "workers": 3}
    options.update(kw)
    return harvest(items, dest, **options)  # type: ignore[arg-type]


# --- the happy path, re-runs, corrupt files ---------------------------------------------------


def test_harvest_writes_holdings_and_a_rerun_downloads_nothing(
    served: FileServer, tmp_path: Path
) -> None:
    items = make_items(served)
    dest = tmp_path / "holdings"
    report = run(items, dest)
    assert report.ok and report.files == 6 and report.skipped == 0 and report.unverified == 0
    assert report.bytes == 6 * 200_000 and len(report.items) == 3
    check_dest(dest, served, items)
    data = json.loads((dest / COLLECTION / "item-000" / "item-000.json").read_text())
    assert data["assets"]["red"]["href"] == "./red.bin"
    prov = data["properties"][HARVEST_PROPERTY]
    assert prov["provider"] == "plain" and prov["harvested"].endswith("Z")
    assert "https://stac-extensions.github.io/file/v2.1.0/schema.json" in data["stac_extensions"]
    assert json.loads((dest / "catalog.json").read_text())["links"][1]["href"].endswith(
        f"{COLLECTION}/collection.json"
    )
    before = dict(served.served)
    again = run(items, dest)
    assert again.ok and again.files == 0 and again.skipped == 6 and again.bytes == 0
    assert served.served == before  # nothing asked of the server
    assert len(again.items) == 3
    harvested = json.loads((dest / COLLECTION / "item-000" / "item-000.json").read_text())
    assert harvested["properties"][HARVEST_PROPERTY] == prov  # unchanged record


def test_corrupt_or_missing_file_is_fetched_again_and_nothing_else(
    served: FileServer, tmp_path: Path
) -> None:
    items = make_items(served)
    dest = tmp_path / "h"
    run(items, dest)
    bad = dest / COLLECTION / "item-001" / "nir.bin"
    raw = bytearray(bad.read_bytes())
    raw[5] ^= 0xFF
    bad.write_bytes(bytes(raw))
    (dest / COLLECTION / "item-002" / "red.bin").unlink()
    served.reset_counts()
    report = run(items, dest)
    assert report.files == 2 and report.skipped == 4
    assert served.served == {"item-001/nir.bin": 200_000, "item-002/red.bin": 200_000}
    check_dest(dest, served, items)


def test_assets_selection_and_merge_with_held_assets(served: FileServer, tmp_path: Path) -> None:
    items = make_items(served)
    dest = tmp_path / "h"
    assert run(items, dest, assets="red").files == 3
    assert list(StaticHoldings(dest).get(COLLECTION, "item-000").assets) == ["red"]  # type: ignore[union-attr]
    report = run(items, dest, assets=["nir"])
    assert report.files == 3 and report.skipped == 0
    held = StaticHoldings(dest).get(COLLECTION, "item-000")
    assert held is not None and sorted(held.assets) == ["nir", "red"]
    with pytest.raises(HarvestError, match="No item has the asset"):
        run(items, dest, assets=["swir16"])


def test_default_selection_skips_previews(served: FileServer, tmp_path: Path) -> None:
    items = make_items(served)
    for item in items:
        item.add_asset(
            "thumbnail", pystac.Asset(served.url_for(f"{item.id}/red.bin"), roles=["thumbnail"])
        )
    report = run(items, tmp_path / "h")
    assert report.files == 6
    assert not list((tmp_path / "h").rglob("thumbnail*"))


# --- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "first_status"),
    [
        (Fault.drop(after=70_000, times=2), 200),
        (Fault.truncate(after=50_000), 200),
        (Fault.status(500, times=2), 500),
        (Fault.status(503, retry_after=0, times=1), 503),
        (Fault.status(429, retry_after=0, times=2), 429),
        (Fault.corrupt(), 200),
        (Fault.restoring(retry=0.05, times=2), 202),
    ],
    ids=["drop", "truncate", "500", "503", "429", "corrupt", "202"],
)
def test_each_fault_is_survived(
    served: FileServer, tmp_path: Path, fault: Fault, first_status: int
) -> None:
    served.add_fault(fault, "item-000/red.bin")
    items = make_items(served)
    report = run(items, tmp_path / "h")
    assert report.ok, report.summary()
    check_dest(tmp_path / "h", served, items)
    log = served.requests_for("item-000/red.bin")
    assert log[0].status == first_status and log[-1].status in (200, 206)
    if fault.kind in ("drop", "truncate"):  # resumed where the connection broke
        starts = [r.start for r in log]
        if fault.kind == "truncate":
            assert starts == [0, fault.after]
        assert starts[1] > 0 and starts == sorted(starts)
        assert served.served["item-000/red.bin"] < 200_000 + len(log) * fault.after
    if fault.kind == "corrupt":  # the bad body is thrown away and fetched whole again
        assert served.served["item-000/red.bin"] == 400_000 and log[1].start == 0


def test_resume_by_range_from_a_part_file(served: FileServer, tmp_path: Path) -> None:
    items = make_items(served)
    dest = tmp_path / "h"
    folder = dest / COLLECTION / "item-000"
    folder.mkdir(parents=True)
    data = (served.root / "item-000" / "red.bin").read_bytes()
    (folder / "red.bin.part").write_bytes(data[:123_456])
    run(items, dest)
    log = served.requests_for("item-000/red.bin")
    assert [(r.start, r.status) for r in log] == [(123_456, 206)]
    assert served.served["item-000/red.bin"] == 200_000 - 123_456
    check_dest(dest, served, items)


def test_server_ignoring_range_restarts_from_zero(served: FileServer, tmp_path: Path) -> None:
    served.add_fault(Fault.no_range(), "item-000/red.bin")
    items = make_items(served)
    folder = tmp_path / "h" / COLLECTION / "item-000"
    folder.mkdir(parents=True)
    (folder / "red.bin.part").write_bytes(b"x" * 1000)  # wrong bytes: must not be kept
    run(items, tmp_path / "h")
    assert served.served["item-000/red.bin"] == 200_000
    check_dest(tmp_path / "h", served, items)


def test_retry_after_is_honoured(served: FileServer, tmp_path: Path) -> None:
    served.add_fault(Fault.status(503, retry_after=1), "item-000/red.bin")
    items = make_items(served)
    run(items, tmp_path / "h")
    first, second = served.requests_for("item-000/red.bin")[:2]
    assert second.at - first.at >= 0.95


def test_retry_after_as_http_date() -> None:
    from email.utils import formatdate

    from mus_lab.catalog._harvest_fetch import _retry_after

    assert 8 <= (_retry_after(formatdate(time.time() + 10, usegmt=True)) or 0) <= 10
    assert _retry_after("3") == 3.0 and _retry_after("soon") is None


def test_trickle_and_no_checksum_no_size(served: FileServer, tmp_path: Path) -> None:
    served.add_fault(Fault.trickle(chunk=50_000, delay=0.01))
    items = make_items(served, checksum=False, size=False)
    report = run(items, tmp_path / "h")
    assert report.ok and report.unverified == 6
    check_dest(tmp_path / "h", served, items)


def test_a_body_that_always_ends_at_the_same_byte_spends_the_budget(
    served: FileServer, tmp_path: Path
) -> None:
    # A server that ignores Range and closes every body at the same offset (the recorded
    # CDSE answers say 224 MB where a stand-in body has 400 bytes): resuming makes no
    # progress, so it must not retry for ever.
    served.add_fault(Fault.truncate(after=1000, times=None, ignore_range=True), "item-000/red.bin")
    report = run(make_items(served), tmp_path / "h")
    (failure,) = report.failures
    assert (failure.item_id, failure.asset) == ("item-000", "red")
    assert "gave up after 5 attempts" in failure.reason and "after 1000 bytes" in failure.reason
    assert len(report.items) == 2


def test_retry_budget_spent_fails_that_item_only(served: FileServer, tmp_path: Path) -> None:
    served.add_fault(Fault.status(500, times=None), "item-001/nir.bin")
    items = make_items(served)
    report = run(items, tmp_path / "h")
    assert not report.ok and len(report.failures) == 1
    failure = report.failures[0]
    assert (failure.item_id, failure.asset) == ("item-001", "nir")
    assert "gave up after 5 attempts" in failure.reason and "HTTP 500" in failure.reason
    assert StaticHoldings(tmp_path / "h").get(COLLECTION, "item-001") is None
    assert len(report.items) == 2
    assert (tmp_path / "h" / COLLECTION / "item-001" / "red.bin").is_file()  # kept for a re-run
    assert "1 failed" in report.summary()


@pytest.mark.parametrize("code", [403, 404])
def test_forbidden_or_missing_fails_at_once_without_secrets(
    served: FileServer, tmp_path: Path, code: int
) -> None:
    items = make_items(served)
    asset = items[0].assets["red"]
    if code == 404:
        asset.href = served.url_for("item-000/gone.bin") + "?token=SECRET123"
    else:
        served.add_fault(Fault.status(403, times=None), "item-000/red.bin")
        asset.href += "?sig=SECRET123"
    report = run(items, tmp_path / "h")
    (failure,) = report.failures
    assert f"HTTP {code}" in failure.reason and "SECRET123" not in report.summary()
    assert len(served.requests_for("item-000/red.bin" if code == 403 else "item-000/gone.bin")) == 1


def test_origin_href_keeps_no_credentials(served: FileServer, tmp_path: Path) -> None:
    items = make_items(served)
    items[0].assets["red"].href += "?sig=SECRET123&format=tif"
    run(items, tmp_path / "h")
    text = (tmp_path / "h" / COLLECTION / "item-000" / "item-000.json").read_text()
    assert "SECRET123" not in text and "format=tif" in text


# --- order-then-download --------------------------------------------------------------------


class _OrderAccess(PlainAccess):
    """Answers Pending for item-000 twice (an order being prepared), then Ready."""

    provider = "order-test"

    def __init__(self) -> None:
        self.polls = 0
        self.lock = threading.Lock()

    def prepare(self, item: pystac.Item, key: str, asset: pystac.Asset) -> Ready | Pending:
        if item.id == "item-000":
            with self.lock:
                self.polls += 1
                if self.polls <= 2:
                    return Pending(0.2, "Queued")
        return super().prepare(item, key, asset)


def test_pending_is_polled_while_others_download(served: FileServer, tmp_path: Path) -> None:
    access = _OrderAccess()
    register_access("order-test", lambda: access)
    items = make_items(served, provider="order-test")
    report = run(items, tmp_path / "h", workers=1)
    assert report.ok and access.polls >= 3
    first = min(r.at for r in served.requests_for("item-000/red.bin"))
    others = [
        r.at for p in ("item-001/red.bin", "item-002/nir.bin") for r in served.requests_for(p)
    ]
    assert max(others) < first  # the single worker was never held by the waiting order
    check_dest(tmp_path / "h", served, items)


def test_pending_too_long_is_reported_to_rerun_later(served: FileServer, tmp_path: Path) -> None:
    served.add_fault(Fault.restoring(retry=85816, times=None), "item-002/red.bin")
    items = make_items(served)
    t0 = time.monotonic()
    report = run(items, tmp_path / "h", retries=RetryPolicy(backoff=0.01, max_pending=60))
    assert time.monotonic() - t0 < 10
    (failure,) = report.failures
    assert "ItemsRestoring" in failure.reason and "85816 s" in failure.reason
    assert "run the same harvest later" in failure.reason


# --- credentials -------------------------------------------------------------------------------


def test_token_expiring_mid_download_is_refreshed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_files(tmp_path / "srv", 3, ("red", "nir"), 200_000)
    with FileServer(tmp_path / "srv", token="first-SECRET", token_bytes=300_000) as server:
        access = server.access("token-test")
        register_access("token-test", lambda: access)
        items = make_items(server, provider="token-test")
        with caplog.at_level(logging.DEBUG, logger="mus_lab"):
            report = run(items, tmp_path / "h")
        assert report.ok, report.summary()
        assert access.refreshes >= 1  # how many depends on how the workers interleave
        assert any(r.status == 401 for r in server.requests)
        check_dest(tmp_path / "h", server, items)
        secrets = ["first-SECRET", str(server.token)]
    written = "".join(p.read_text() for p in (tmp_path / "h").rglob("*.json"))
    for secret in secrets:
        assert secret not in written and secret not in caplog.text
        assert secret not in report.summary() and secret not in repr(report)


def test_refused_credentials_stop_with_a_clear_error(tmp_path: Path) -> None:
    make_files(tmp_path / "srv", 2, ("red",), 10_000)
    with FileServer(tmp_path / "srv", token="right-token") as server:

        class Wrong(PlainAccess):
            provider = "wrong-test"
            refreshes = 0

            def prepare(self, item: pystac.Item, key: str, asset: pystac.Asset) -> Ready:
                ready = super().prepare(item, key, asset)
                assert isinstance(ready, Ready)
                return Ready(ready.url, {"Authorization": "Bearer WRONG-SECRET"})

            def refresh(self) -> None:
                Wrong.refreshes += 1

        register_access("wrong-test", Wrong)
        items = make_items(server, provider="wrong-test")
        with pytest.raises(CredentialsError, match="refused the credentials") as info:
            run(items, tmp_path / "h")
        assert "WRONG-SECRET" not in str(info.value) and Wrong.refreshes >= 1
        assert sum(server.served.values()) == 0
    assert not [p for p in (tmp_path / "h").rglob("*") if p.is_file() and ".locks" not in p.parts]


# --- bad input, unreachable hosts, disk full ---------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_asset_host_fails_clearly(served: FileServer, tmp_path: Path) -> None:
    items = make_items(served)[:1]
    port = _closed_port()
    for asset in items[0].assets.values():
        asset.href = f"http://127.0.0.1:{port}/x/{Path(asset.href).name}"
    report = run(items, tmp_path / "h", retries=RetryPolicy(attempts=2, backoff=0.01))
    assert len(report.failures) == 2 and report.files == 0
    assert all(f"cannot reach 127.0.0.1:{port}" in f.reason for f in report.failures)
    assert not list((tmp_path / "h").rglob("*.bin*"))


def test_bad_arguments(served: FileServer, tmp_path: Path) -> None:
    items = make_items(served)
    (tmp_path / "file").write_text("x")
    with pytest.raises(HarvestError, match="is a file"):
        run(items, tmp_path / "file")
    with pytest.raises(HarvestError, match="workers"):
        run(items, tmp_path / "h", workers=0)
    items[0].collection_id = None
    report = run(items, tmp_path / "h")
    assert report.failures[0].item_id == "item-000" and "collection id" in report.failures[0].reason


def test_sizes_that_cannot_fit_are_refused_before_downloading(
    served: FileServer, tmp_path: Path
) -> None:
    items = make_items(served)
    items[0].assets["red"].extra_fields["file:size"] = 10**16
    with pytest.raises(DiskFullError, match=r"needs about .* MB .* free: free some space"):
        run(items, tmp_path / "h")
    assert served.served == {} and not (tmp_path / "h").exists()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root and mount rights; skipped otherwise)."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a size-limited folder needs root to mount a 1 MiB tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_full_disk_stops_cleanly_and_leaves_nothing_complete_looking(
    tmp_path: Path, small_disk: Path
) -> None:
    make_files(tmp_path / "srv", 4, ("red",), 400_000)  # 1.6 MB for 1 MiB
    with FileServer(tmp_path / "srv") as server:
        items = make_items(server, size=False)  # unknown sizes: no check before starting
        with pytest.raises(DiskFullError, match=r"is full .* free some space or harvest into"):
            run(items, small_disk / "h", workers=2)
    for path in (small_disk / "h").rglob("*.bin"):  # every final name holds a whole, good file
        expected = (tmp_path / "srv" / path.parent.name / path.name).read_bytes()
        assert path.read_bytes() == expected
    for path in (small_disk / "h").rglob(f"{COLLECTION}/*/*.json"):
        assert (path.parent / "red.bin").is_file()


def test_enospc_emulated_when_no_tmpfs(
    served: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same path without a small disk: ``write`` raises ENOSPC after 100 KB (emulated)."""
    from mus_lab.catalog import _harvest_fetch

    real = _harvest_fetch._open_part

    class Full:
        def __init__(self, fh: object) -> None:
            self.fh, self.n = fh, 0

        def write(self, data: bytes) -> int:
            self.n += len(data)
            if self.n > 100_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(data)  # type: ignore[attr-defined,no-any-return]

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()  # type: ignore[attr-defined]

    monkeypatch.setattr(_harvest_fetch, "_open_part", lambda p, o: Full(real(p, o)))
    with pytest.raises(DiskFullError, match="full"):
        run(make_items(served), tmp_path / "h")
    assert not list((tmp_path / "h").rglob("*.bin"))  # only .part files


# --- Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path: Path) -> None:
    make_files(tmp_path / "srv", 4, ("red", "nir"), 100_000)
    with FileServer(tmp_path / "srv") as server:
        server.add_fault(Fault.trickle(chunk=10_000, delay=0.05))  # 0.5 s a file, 2 s in all
        items = make_items(server)

        def interrupt() -> None:  # Ctrl-C once 150 KB have been served
            while sum(server.served.values()) < 150_000:
                time.sleep(0.01)
            _thread.interrupt_main()

        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt, match="run the same harvest again to resume"):
            run(items, tmp_path / "h", workers=4)
        parts = list((tmp_path / "h").rglob("*.part"))
        assert parts
        for path in (tmp_path / "h").rglob("*.bin"):
            assert verify_file(path, parse_checksum(multihash(path.read_bytes())), 100_000)
        served_first = sum(server.served.values())
        report = run(items, tmp_path / "h", workers=4)
        assert report.ok and any(r.status == 206 for r in server.requests)
        assert sum(server.served.values()) < served_first + 8 * 100_000
        check_dest(tmp_path / "h", server, items)


# --- checksums -------------------------------------------------------------------------------


def test_checksum_forms() -> None:
    data = b"mus_lab"
    md5 = hashlib.md5(data).hexdigest()
    assert parse_checksum("d50110" + md5).algorithm == "md5"
    assert parse_checksum("MD5:" + md5.upper()).digest == md5
    assert parse_checksum(md5).algorithm == "md5"
    assert parse_checksum(multihash(data)).multihash() == multihash(data)
    assert parse_checksum("sha256:" + hashlib.sha256(data).hexdigest()).algorithm == "sha256"
    blake = parse_checksum("1e20" + "00" * 32)
    assert blake.algorithm == "blake3"
    with pytest.raises(ValueError):
        parse_checksum("crc32:1234")


def test_md5_checksum_is_verified(served: FileServer, tmp_path: Path) -> None:
    items = make_items(served, checksum=False)
    for item in items:
        for asset in item.assets.values():
            data = (served.root / item.id / Path(asset.href).name).read_bytes()
            asset.extra_fields["file:checksum"] = "d50110" + hashlib.md5(data).hexdigest()
    served.add_fault(Fault.corrupt(), "item-000/nir.bin")
    report = run(items, tmp_path / "h")
    assert report.ok and report.unverified == 0
    assert served.served["item-000/nir.bin"] == 400_000
    check_dest(tmp_path / "h", served, items)
