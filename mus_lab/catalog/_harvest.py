"""Harvest: download the assets of searched items into the holdings folder, resumably.

:func:`harvest` puts every selected asset of every item in ``DEST/<collection>/<item id>/``
and ingests each item whose files are all complete and verified into
:class:`~mus_lab.catalog.StaticHoldings` ``(DEST)``: asset hrefs local, ``file:checksum``
(sha2-256 multihash) and ``file:size`` always, the original href as the ``origin``
alternate, and where and when it came from in ``properties["mus_lab:harvest"]``. The
item JSON is written last, so it marks a complete item.

A bounded pool of worker threads (one ``requests.Session`` each) downloads; the calling
thread schedules: tasks that must wait (a product being prepared, a ``Retry-After``, a
backoff) sit in a heap with a not-before time and never hold a worker. One attempt of one
asset is :func:`mus_lab.catalog._harvest_fetch.fetch_ready` (``.part`` files, Range
resume, verification before the rename). See ``docs/design/0008-harvest.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import heapq
import logging
import queue
import random
import re
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import pystac
import requests

from mus_lab.catalog._access import (
    HARVEST_PROPERTY,
    PROVIDER_PROPERTY,
    AssetAccess,
    Pending,
    access_for,
)
from mus_lab.catalog._harvest_fetch import (
    Checksum,
    Done,
    Failed,
    Fatal,
    Outcome,
    Retry,
    Stopped,
    fetch_ready,
    parse_checksum,
    pending_retry,
    safe_url,
    target_name,
    verify_file,
)
from mus_lab.catalog._holdings import StaticHoldings
from mus_lab.errors import (
    CatalogError,
    CredentialsError,
    DiskFullError,
    HarvestError,
    MusLabError,
)

__all__ = ["HarvestFailure", "HarvestReport", "RetryPolicy", "harvest"]

log = logging.getLogger(__name__)

FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
ALTERNATE_EXTENSION = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"
#: Roles of the assets left out when ``assets=None``: previews, not data.
SKIPPED_ROLES = frozenset({"thumbnail", "overview", "visual", "tiles"})
# Query parameters that may carry credentials (SAS tokens, signed URLs): not kept in items.
_SECRET_PARAM = re.compile(
    r"(?i)^(sig|signature|token|access_token|key|apikey|api_key|password|secret|credential|"
    r"se|sp|sv|sr|st|skoid|sktid|skt|ske|sks|skv|x-amz-.*|x-goog-.*)$"
)


@dataclass(frozen=True)
class RetryPolicy:
    """How long the harvest insists on one asset.

    Attributes
    ----------
    attempts
        Failed attempts (transient errors, 429/503, bad checksums) allowed per asset
        before it is reported as failed. An attempt that got further into the file than
        every earlier one spends none (the next one resumes where it stopped).
    backoff
        First backoff in seconds; it doubles at each attempt, with jitter (x 0.5 ... 1).
    max_backoff
        Longest backoff in seconds.
    max_pending
        Seconds to keep polling a product the provider is preparing (ordered, restoring
        from tape) before reporting it as "re-run later".

    Examples
    --------
    >>> RetryPolicy(attempts=3, backoff=0.1).attempts
    3
    """

    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_pending: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Return the seconds to wait after failed attempt number ``attempt``.

        Parameters
        ----------
        attempt
            Failed attempts so far (1 for the first).

        Returns
        -------
        float
            ``backoff * 2**(attempt - 1)``, at most ``max_backoff``, times a jitter in [0.5, 1].
        """
        return min(self.max_backoff, self.backoff * 2 ** max(0, attempt - 1)) * random.uniform(
            0.5, 1.0
        )


@dataclass(frozen=True)
class HarvestFailure:
    """One asset (or a whole item, ``asset=None``) the harvest could not bring in."""

    collection: str
    item_id: str
    asset: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.collection}/{self.item_id}" + (f" [{self.asset}]" if self.asset else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class HarvestReport:
    """What a harvest did.

    Attributes
    ----------
    dest
        The holdings folder.
    items
        The items of the request now held (local hrefs), ingested this run or before.
    files
        Files downloaded this run.
    bytes
        Bytes received this run (resumed parts count only their new bytes).
    skipped
        Files already in place and verified (not downloaded again).
    unverified
        Files kept without a checksum check (the provider gives none, or its algorithm
        is not available here): their size was checked when known.
    failures
        Assets (or items) that could not be brought in; their items are not ingested.
    seconds
        Wall time of the harvest.
    notes
        Other things worth knowing (an unsupported checksum algorithm...).

    Examples
    --------
    >>> report = HarvestReport(Path("h"), (), 2, 3_000_000, 1, 0, (), 1.5)
    >>> report.ok, round(report.mb_per_s, 1)
    (True, 2.0)
    """

    dest: Path
    items: tuple[pystac.Item, ...]
    files: int
    bytes: int
    skipped: int
    unverified: int
    failures: tuple[HarvestFailure, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    @property
    def mb_per_s(self) -> float:
        """Download rate of this run in MB/s (10^6 bytes)."""
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """Return a few lines for a terminal: counts, rate, failures (at most 20 listed).

        Returns
        -------
        str
            The summary.

        Examples
        --------
        >>> print(HarvestReport(Path("h"), (), 2, 3_000_000, 1, 0, (), 1.5).summary())
        Harvested 2 files (3.0 MB in 1.5 s, 2.0 MB/s) into h; 1 already held; 0 failed; 0 items held.
        """
        failed = {(f.collection, f.item_id) for f in self.failures}
        lines = [
            f"Harvested {self.files} files ({self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s, "
            f"{self.mb_per_s:.1f} MB/s) into {self.dest}; {self.skipped} already held; "
            f"{len(failed)} failed; {len(self.items)} items held."
        ]
        if self.unverified:
            lines.append(
                f"{self.unverified} files had no checksum to verify (their size was checked "
                "when known)."
            )
        lines += list(self.notes)
        lines += [f"  failed: {f}" for f in self.failures[:20]]
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more")
        return "\n".join(lines)


# --- selection and planning ----------------------------------------------------------------------


def _default_selection(item: pystac.Item) -> list[str]:
    keys = []
    for key, asset in item.assets.items():
        if SKIPPED_ROLES & set(asset.roles or ()):
            continue
        if key.endswith("-jp2") and key[:-4] in item.assets:  # Earth Search's JPEG 2000 copies
            continue
        keys.append(key)
    return keys


def _href_name(href: str) -> str:
    return unquote(urlsplit(href).path.rstrip("/").rpartition("/")[2])


def _origin_href(href: str) -> str:
    """The original href without credential-like query parameters."""
    parts = urlsplit(href)
    if not parts.query:
        return href
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _SECRET_PARAM.match(k)
    ]
    return urlunsplit(parts._replace(query=urlencode(kept), fragment=""))


def _local_asset(asset: pystac.Asset, folder: Path) -> Path | None:
    href = asset.get_absolute_href() or asset.href
    path = Path(href[7:] if href.startswith("file://") else href)
    return path if path.is_absolute() and path.parent == folder else None


@dataclass
class _ItemState:
    item: pystac.Item
    folder: Path
    held: pystac.Item | None
    access: AssetAccess
    remaining: int
    done: dict[str, Done] = field(default_factory=dict)
    failed: bool = False


@dataclass
class _Task:
    state: _ItemState
    key: str
    asset: pystac.Asset
    fallback: str  # file name from the href (prefixed with the key when two collide)
    prefixed: bool
    held: tuple[str, Checksum | None, int | None] | None = None
    attempts: int = 0
    reached: int = 0  # furthest offset an attempt has reached (resumes must go beyond it)
    polls: int = 0
    pending_since: float | None = None
    generation: int = 0

    def describe(self) -> str:
        st = self.state
        return f"{st.item.collection_id}/{st.item.id} [{self.key}]"


def _parse(text: Any, notes: set[str]) -> Checksum | None:
    if not text:
        return None
    try:
        checksum = parse_checksum(str(text))
    except ValueError:
        notes.add(f"Checksum {str(text)[:24]!r}... not understood: files checked by size only.")
        return None
    if checksum.hasher() is None:
        notes.add(
            f"{checksum.algorithm} checksums cannot be verified here (pip install "
            f"{checksum.algorithm}): those files were checked by size only."
        )
    return checksum


def _plan(
    items: Sequence[pystac.Item],
    holdings: StaticHoldings,
    assets: Sequence[str] | None,
    failures: list[HarvestFailure],
    notes: set[str],
) -> tuple[list[_ItemState], list[_Task]]:
    if assets is not None:
        missing = [k for k in assets if not any(k in i.assets for i in items)]
        if missing:
            have = sorted({k for i in items for k in i.assets})
            raise HarvestError(
                f"No item has the asset(s) {missing}: choose among {have} (canonical names "
                "after normalisation), or leave assets out to take every data asset."
            )
    states: list[_ItemState] = []
    tasks: list[_Task] = []
    for item in items:
        coll = item.collection_id or ""
        bad = [n for n in (coll, item.id) if not n or n.startswith(".") or re.search(r"[/\\]", n)]
        if bad:
            failures.append(
                HarvestFailure(
                    coll,
                    item.id,
                    None,
                    "the item needs a collection id, and ids must be usable as folder names "
                    "(no '/', not starting with '.')",
                )
            )
            continue
        keys = (
            [k for k in assets if k in item.assets]
            if assets is not None
            else _default_selection(item)
        )
        if not keys:
            continue
        folder = holdings.item_dir(coll, item.id)
        held = holdings.get(coll, item.id) if (folder / f"{item.id}.json").is_file() else None
        state = _ItemState(item, folder, held, access_for(item), remaining=len(keys))
        states.append(state)
        names = [_href_name(item.assets[k].href) for k in keys]
        for key, name in zip(keys, names, strict=True):
            task = _Task(
                state,
                key,
                item.assets[key],
                f"{key}-{name}" if names.count(name) > 1 else name,
                prefixed=names.count(name) > 1,
            )
            if held is not None and key in held.assets:
                path = _local_asset(held.assets[key], folder)
                if path is not None:
                    fields = held.assets[key].extra_fields
                    size = fields.get("file:size")
                    task.held = (
                        path.name,
                        _parse(fields.get("file:checksum"), notes),
                        int(size) if size is not None else None,
                    )
            tasks.append(task)
    return states, tasks


def _check_space(dest: Path, tasks: Sequence[_Task]) -> None:
    """Refuse to start when the sizes the catalog gives do not fit on the disk."""
    need = 0
    for task in tasks:
        if task.held is not None:
            continue
        size = task.asset.extra_fields.get("file:size")
        if size is None:
            return  # unknown sizes: the disk-full error comes when it happens
        path = task.state.folder / task.fallback
        if path.is_file():
            continue
        part = path.with_name(path.name + ".part")
        need += int(size) - (part.stat().st_size if part.is_file() else 0)
    probe = dest
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > free:
        raise DiskFullError(
            f"The harvest needs about {need / 1e6:.1f} MB in {dest} but only {free / 1e6:.1f} MB "
            "are free: free some space, select fewer assets or items, or choose another "
            "folder (--out)."
        )


# --- the run -----------------------------------------------------------------------------------


class _Run:
    """One harvest: worker threads, the not-before heap, batched ingests, the progress bar."""

    def __init__(
        self,
        holdings: StaticHoldings,
        states: list[_ItemState],
        tasks: list[_Task],
        *,
        workers: int,
        policy: RetryPolicy,
        timeout: float,
        progress: bool,
        source: str,
        notes: set[str],
        failures: list[HarvestFailure],
    ) -> None:
        self.holdings = holdings
        self.states = states
        self.total = len(tasks)
        self.workers = workers
        self.policy = policy
        self.timeout = timeout
        self.source = source
        self.notes = notes
        self.failures = failures
        self.stop = threading.Event()
        self.work: queue.Queue[_Task | None] = queue.Queue()
        self.results: queue.Queue[tuple[_Task, Outcome]] = queue.Queue()
        self.heap: list[tuple[float, int, _Task]] = []
        self.seq = 0
        for task in tasks:
            self._schedule(task, 0.0)
        self.outstanding = 0
        self.lock = threading.Lock()
        self.received = 0
        self.shown = 0
        self.files = self.skipped = self.unverified = 0
        self.waiting: set[int] = set()
        self.ready: list[pystac.Item] = []
        self.held: list[pystac.Item] = []
        self.last_flush = time.monotonic()
        self.flush_every = 2.0
        self.generations: dict[int, int] = {}
        self.received_at_refresh: dict[int, int] = {}
        self.refresh_lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.bar: Any = None
        self.show = progress

    # worker side ----------------------------------------------------------------------------
    def _add_bytes(self, n: int) -> None:
        with self.lock:
            self.received += n

    def _worker(self) -> None:
        with requests.Session() as session:
            while (task := self.work.get()) is not None:
                try:
                    outcome = self._attempt(task, session)
                except MusLabError as exc:
                    outcome = Failed(str(exc))
                except Exception as exc:  # a provider's bug must not hang the harvest
                    outcome = Failed(f"unexpected {type(exc).__name__} while fetching")
                    log.debug("harvest: %s failed", task.describe(), exc_info=True)
                self.results.put((task, outcome))

    def _attempt(self, task: _Task, session: requests.Session) -> Outcome:
        st = task.state
        if self.stop.is_set():
            return Stopped()
        if task.held is not None:  # verify what is held without asking the provider
            name, checksum, size = task.held
            path = st.folder / name
            if path.is_file():
                done = verify_file(path, checksum, size, stop=self.stop)
                if done is not None:
                    return done
                if self.stop.is_set():
                    return Stopped()
                path.unlink(missing_ok=True)
            task.held = None
        access = st.access
        generation = self.generations.get(id(access), 0)
        try:
            answer = access.prepare(st.item, task.key, task.asset)
        except CredentialsError as exc:
            return Fatal(exc)
        except requests.RequestException as exc:
            return Retry(f"the provider did not answer ({type(exc).__name__})")
        if isinstance(answer, Pending):
            return pending_retry(answer)
        task.generation = generation
        expected = _parse(answer.checksum, self.notes)
        size = answer.size
        name = target_name(answer, task.fallback, task.key, task.asset.media_type)
        if task.prefixed and not answer.filename and not name.startswith(f"{task.key}-"):
            name = f"{task.key}-{name}"
        path = st.folder / name
        st.folder.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            done = verify_file(path, expected, size, stop=self.stop)
            if done is not None:
                return done
            if self.stop.is_set():
                return Stopped()
            path.unlink(missing_ok=True)
        outcome = fetch_ready(
            answer,
            path,
            session,
            expected=expected,
            size=size,
            stop=self.stop,
            timeout=self.timeout,
            progress=self._add_bytes,
        )
        if isinstance(outcome, Retry) and outcome.unauthorized:
            return self._unauthorized(task, access, generation) or outcome
        return outcome

    def _unauthorized(self, task: _Task, access: AssetAccess, generation: int) -> Fatal | None:
        """Renew the credentials once per expiry; a renewed token refused at once is fatal."""
        with self.refresh_lock:
            if self.generations.get(id(access), 0) != generation:
                return None  # another worker renewed them since this one prepared: retry
            with self.lock:
                received = self.received
            if generation and self.received_at_refresh.get(id(access)) == received:
                return Fatal(
                    CredentialsError(
                        f"The server refused the credentials of provider {access.provider!r} "
                        f"(HTTP 401) for {task.describe()}, even after renewing them: check "
                        "the credentials (environment variables, ~/.netrc or the config "
                        "file), or whether this source needs a login at all."
                    )
                )
            try:
                access.refresh()
            except CredentialsError as exc:
                return Fatal(exc)
            self.generations[id(access)] = generation + 1
            self.received_at_refresh[id(access)] = received
        return None

    # scheduler side ---------------------------------------------------------------------------
    def _schedule(self, task: _Task, delay: float) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (time.monotonic() + delay, self.seq, task))

    def run(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=None,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="harvest",
            disable=not self.show,
            dynamic_ncols=True,
        )
        for n in range(min(self.workers, self.total)):
            thread = threading.Thread(target=self._worker, name=f"harvest-{n}", daemon=True)
            thread.start()
            self.threads.append(thread)
        fatal: MusLabError | None = None
        interrupted = False
        try:
            fatal = self._loop()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self._shutdown()
            with contextlib.suppress(MusLabError):
                fatal = fatal or self._flush()
            self._tick()
            self.bar.close()
        if interrupted:
            raise KeyboardInterrupt(
                f"Harvest interrupted: {self.files + self.skipped} files complete are kept, "
                "and the .part files of those in progress; run the same harvest again to "
                "resume."
            ) from None
        if fatal is not None:
            raise fatal

    def _loop(self) -> MusLabError | None:
        while self.heap or self.outstanding:
            now = time.monotonic()
            while self.heap and self.outstanding < self.workers and self.heap[0][0] <= now:
                task = heapq.heappop(self.heap)[2]
                self.waiting.discard(id(task))
                self.work.put(task)
                self.outstanding += 1
            wait = 0.2
            if self.heap and self.outstanding < self.workers:
                wait = min(wait, max(0.0, self.heap[0][0] - now))
            try:
                task, outcome = self.results.get(timeout=wait)
            except queue.Empty:
                self._tick()
                fatal = self._maybe_flush()
                if fatal is not None:
                    return fatal
                continue
            self.outstanding -= 1
            fatal = self._handle(task, outcome)
            self._tick()
            fatal = fatal or self._maybe_flush()
            if fatal is not None:
                return fatal
        return None

    def _shutdown(self) -> None:
        self.stop.set()
        for _ in self.threads:
            self.work.put(None)
        deadline = time.monotonic() + max(5.0, min(self.timeout, 30.0))
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        while True:  # files completed while stopping are kept and their items ingested
            try:
                task, outcome = self.results.get_nowait()
            except queue.Empty:
                break
            if isinstance(outcome, Done):
                self._handle(task, outcome)

    def _fail(self, task: _Task, reason: str) -> None:
        st = task.state
        self.failures.append(
            HarvestFailure(st.item.collection_id or "", st.item.id, task.key, reason)
        )
        st.failed = True
        st.remaining -= 1
        log.info("harvest: %s failed: %s", task.describe(), reason)

    def _handle(self, task: _Task, outcome: Outcome) -> MusLabError | None:
        st = task.state
        if isinstance(outcome, Done):
            st.done[task.key] = outcome
            st.remaining -= 1
            self.skipped += outcome.skipped
            self.files += not outcome.skipped
            self.unverified += not outcome.verified
            if st.remaining == 0 and not st.failed:
                self._complete(st)
        elif isinstance(outcome, Failed):
            self._fail(task, outcome.reason)
        elif isinstance(outcome, Fatal):
            return outcome.error
        elif isinstance(outcome, Retry):
            return self._retry(task, outcome)
        return None

    def _retry(self, task: _Task, outcome: Retry) -> MusLabError | None:
        log.debug("harvest: %s: %s", task.describe(), outcome.reason)
        if outcome.unauthorized:
            self._schedule(task, 0.0)
        elif outcome.pending:
            now = time.monotonic()
            task.pending_since = task.pending_since or now
            task.polls += 1
            delay = max(outcome.delay or 0.0, self.policy.delay(task.polls))
            if now + delay - task.pending_since > self.policy.max_pending:
                hint = f" (it suggests retrying in {outcome.delay:.0f} s)" if outcome.delay else ""
                self._fail(
                    task,
                    f"still being prepared by the provider ({outcome.reason}){hint}: run the "
                    "same harvest later to fetch it",
                )
            else:
                self.waiting.add(id(task))
                self._schedule(task, delay)
        else:
            # A resume is free only when it got further than every attempt before: a server
            # that keeps ending the body at the same offset spends the retry budget.
            advanced = outcome.progressed and (
                outcome.reached is None or outcome.reached > task.reached
            )
            if outcome.reached is not None:
                task.reached = max(task.reached, outcome.reached)
            if outcome.counts and not advanced:
                task.attempts += 1
            if task.attempts > self.policy.attempts:
                self._fail(task, f"gave up after {task.attempts} attempts: {outcome.reason}")
            else:
                delay = (
                    outcome.delay
                    if outcome.delay is not None
                    else self.policy.delay(max(1, task.attempts))
                )
                self._schedule(task, delay)
        return None

    def _complete(self, st: _ItemState) -> None:
        if (
            st.held is not None
            and all(d.skipped for d in st.done.values())
            and all(k in st.held.assets for k in st.done)
        ):
            self.held.append(st.held)  # nothing changed: keep its record (and harvest date)
            return
        self.ready.append(self._local_item(st))

    def _local_item(self, st: _ItemState) -> pystac.Item:
        item = st.item.clone()
        assets: dict[str, pystac.Asset] = {}
        if st.held is not None:
            for key, asset in st.held.assets.items():
                if key not in st.done and (path := _local_asset(asset, st.folder)) is not None:
                    if path.is_file():
                        assets[key] = asset.clone()
        for key, done in st.done.items():
            original = st.item.assets[key]
            asset = original.clone()
            asset.href = str(done.path)
            fields = asset.extra_fields
            fields["file:checksum"] = done.sha256
            fields["file:size"] = done.size
            alternate = dict(fields.get("alternate") or {})
            alternate["origin"] = {
                "href": _origin_href(original.get_absolute_href() or original.href)
            }
            fields["alternate"] = alternate
            # The local copy needs no credentials; the origin keeps what it needed.
            if "auth:refs" in fields:
                alternate["origin"]["auth:refs"] = fields.pop("auth:refs")
            assets[key] = asset
        item.assets.clear()
        for key in sorted(
            assets, key=lambda k: list(st.item.assets).index(k) if k in st.item.assets else 1 << 30
        ):
            item.add_asset(key, assets[key])
        for ext in (FILE_EXTENSION, ALTERNATE_EXTENSION):
            if ext not in item.stac_extensions:
                item.stac_extensions.append(ext)
        # Where the item was found: the search's source, else the item's own link there.
        source = self.source or str(st.item.get_self_href() or "")
        provenance = {
            "provider": st.item.properties.get(PROVIDER_PROPERTY) or st.access.provider,
            "source": safe_url(source) if "://" in source else source,
            "harvested": dt.datetime.now(dt.UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
        item.properties[HARVEST_PROPERTY] = {k: v for k, v in provenance.items() if v}
        return item

    def _maybe_flush(self) -> MusLabError | None:
        if self.ready and time.monotonic() - self.last_flush >= self.flush_every:
            return self._flush()
        return None

    def _flush(self) -> MusLabError | None:
        """Ingest the completed items (one relink per batch; the interval grows with its cost)."""
        if not self.ready:
            return None
        batch, self.ready = self.ready, []
        t0 = time.monotonic()
        try:
            self.holdings.ingest(batch)
        except CatalogError as exc:
            cause = exc.__cause__
            if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
                return DiskFullError(
                    f"The disk holding {self.holdings.location} is full while writing item "
                    "records: free some space or choose another folder (--out), then run the "
                    "same harvest again (downloaded files are kept)."
                )
            return exc
        self.last_flush = time.monotonic()
        self.flush_every = max(2.0, 4 * (self.last_flush - t0))
        self.held += [self.holdings.get(i.collection_id or "", i.id) or i for i in batch]
        return None

    def _tick(self) -> None:
        if self.bar is None or self.bar.disable:
            return
        with self.lock:
            delta, self.shown = self.received - self.shown, self.received
        text = f"{self.files + self.skipped}/{self.total} files"
        if self.waiting:
            text += f", {len(self.waiting)} being prepared"
        if self.failures:
            text += f", {len(self.failures)} failed"
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(delta)


def harvest(
    result: Iterable[pystac.Item],
    dest: str | Path,
    *,
    assets: Sequence[str] | str | None = None,
    workers: int = 4,
    progress: bool = True,
    retries: int | RetryPolicy = 5,
    timeout: float = 60.0,
) -> HarvestReport:
    """Download the assets of ``result``'s items into the holdings folder ``dest``.

    Every selected asset lands in ``dest/<collection>/<item id>/<file>``; an item whose
    selected assets are all complete and verified is ingested into
    :class:`~mus_lab.catalog.StaticHoldings` ``(dest)`` with local hrefs, ``file:checksum``
    (sha2-256 multihash), ``file:size``, the original href as the ``origin`` alternate and
    ``properties["mus_lab:harvest"]`` (provider, source, UTC time). Running it again
    downloads only what is missing or corrupt; an interrupted run resumes its ``.part``
    files with HTTP Range requests.

    Parameters
    ----------
    result
        A :class:`~mus_lab.catalog.SearchResult` or any iterable of :class:`pystac.Item`
        (with collection ids). Each item's provider (``properties["mus_lab:provider"]``)
        tells :func:`~mus_lab.catalog.access_for` how to reach its assets.
    dest
        The holdings folder (created when missing).
    assets
        Asset keys to fetch (canonical names after normalisation), a list or
        ``"red,nir"``; items lacking some take the others. ``None``: every asset except
        previews (roles ``thumbnail``, ``overview``, ``visual``, ``tiles``) and Earth
        Search's ``<key>-jp2`` copies of COGs.
    workers
        Downloads at the same time.
    progress
        Show a progress bar (files and bytes; terminal or notebook).
    retries
        Failed attempts allowed per asset, or a :class:`RetryPolicy`.
    timeout
        Seconds to connect and between two reads of a download.

    Returns
    -------
    HarvestReport
        Counts, rate, the held items and the failures (their items are not ingested).

    Raises
    ------
    HarvestError
        Bad arguments (no item has a requested asset, ``dest`` is a file, ``workers < 1``).
    DiskFullError
        The disk is full, or the catalog's file sizes do not fit: nothing half-written
        looks complete (``.part`` files stay and are resumed by the next run).
    CredentialsError
        The provider refused the credentials even after renewing them.

    Examples
    --------
    Harvest the tiny sample scenario's Sentinel-1 items (local files) into a folder:

    >>> import tempfile
    >>> from mus_lab.catalog import search
    >>> result = search(tiny.catalog_path, collections="sentinel-1-grd", max_items=2)
    >>> dest = Path(tempfile.mkdtemp()) / "holdings"
    >>> report = harvest(result, dest, progress=False)
    >>> report.ok, report.files > 0, len(report.items)
    (True, True, 2)
    >>> harvest(result, dest, progress=False).files  # all held and verified: nothing fetched
    0
    """
    policy = retries if isinstance(retries, RetryPolicy) else RetryPolicy(attempts=int(retries))
    if workers < 1:
        raise HarvestError(f"workers={workers}: give at least 1 download at a time.")
    if timeout <= 0:
        raise HarvestError(f"timeout={timeout}: give a positive number of seconds.")
    if isinstance(assets, str):
        assets = [a.strip() for a in assets.split(",") if a.strip()]
    target = Path(dest).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise HarvestError(f"{target} is a file: give a folder for the holdings (--out).")
    items = list(result)
    source = str(getattr(result, "source", "") or "")
    started = time.perf_counter()
    holdings = StaticHoldings(target)
    failures: list[HarvestFailure] = []
    notes: set[str] = set()
    states, tasks = _plan(items, holdings, assets, failures, notes)
    _check_space(target, tasks)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarvestError(
            f"Cannot create {target} ({exc.strerror or exc}): choose another folder (--out)."
        ) from exc
    run = _Run(
        holdings,
        states,
        tasks,
        workers=workers,
        policy=policy,
        timeout=timeout,
        progress=progress,
        source=source,
        notes=notes,
        failures=failures,
    )
    run.run()
    return HarvestReport(
        dest=target,
        items=tuple(run.held),
        files=run.files,
        bytes=run.received,
        skipped=run.skipped,
        unverified=run.unverified,
        failures=tuple(failures),
        seconds=time.perf_counter() - started,
        notes=tuple(sorted(notes)),
    )
