"""What the benchmark scripts share: timing, peak memory of a child process, the machine's
state, the generated Sentinel-2 scene, the command line and the JSON/table report.

Imported by the scripts as ``from _common import ...`` (they run as
``python benchmarks/bench_<name>.py``, so this folder is on ``sys.path``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ChildRun",
    "arg_parser",
    "best_of",
    "machine",
    "print_table",
    "run_child",
    "s2_items",
    "s2_scene",
    "timed",
    "write_report",
]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call of ``fn`` and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Shortest wall seconds of ``repeat`` calls of ``fn`` and the last call's result."""
    best, res = float("inf"), None
    for _ in range(repeat):
        res = None  # free the previous result before the next run
        seconds, res = timed(fn)
        best = min(best, seconds)
    return best, res


@dataclass(frozen=True)
class ChildRun:
    """A child process run by :func:`run_child`."""

    seconds: float
    peak_rss_mib: float
    stdout: str | None


def run_child(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    label: str = "child process",
) -> ChildRun:
    """Run ``cmd``; its wall seconds and peak RSS (MiB, itself plus its children, polled
    every 20 ms).

    Not ``ru_maxrss``: for a forked-then-exec'd child it includes the parent's pages copied at
    fork time, which would hide the child's own peak. ``capture`` keeps its standard output.
    """
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE if capture else None,
        env=dict(env) if env is not None else None,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        try:
            p = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    stdout, _ = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed with exit code {proc.returncode}")
    return ChildRun(time.perf_counter() - t0, peak / 2**20, stdout)


def machine(**extra: Any) -> dict[str, Any]:
    """CPU count and 1/5/15-minute load average now (the machine may be shared), plus ``extra``."""
    return {"cpus": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()], **extra}


def s2_scene(
    workdir: Path,
    name: str,
    *,
    size: int,
    dates: int,
    start: str,
    every_days: int = 8,
    progress: bool = False,
) -> tuple[Any, float]:
    """A Sentinel-2-only sample scenario, generated once in ``workdir/name`` and reused.

    Returns the scenario and the seconds its generation took (0 when reused).
    """
    import numpy as np

    from mus_lab import sample

    root = workdir / name
    if (root / "scenario.json").exists():
        return sample.Scenario.open(root), 0.0
    first = np.datetime64(start)
    end = first + np.timedelta64(every_days * (dates - 1), "D")
    seconds, sc = timed(
        lambda: sample.generate(
            root,
            size=size,
            seed=7,
            start=str(first),
            end=str(end),
            s2_every_days=every_days,
            sensors=("s2",),
            progress=progress,
        )
    )
    return sc, seconds


def s2_items(scenario: Any) -> list[Any]:
    """The scenario's Sentinel-2 L2A items, in date order."""
    from mus_lab import catalog

    items = list(catalog.search(scenario.catalog_path, collections="sentinel-2-l2a"))
    return sorted(items, key=lambda it: it.datetime)


def arg_parser(
    doc: str | None,
    *,
    workdir: str = "bench_data",
    size: int | None = None,
    dates: int | None = None,
    repeat: int | None = None,
    memory_case: bool = False,
) -> argparse.ArgumentParser:
    """The scripts' parser: their module docstring as help and ``--workdir``; ``--size``,
    ``--dates`` and ``--repeat`` when given a default; ``--memory-case ROOT FRACTION OUT``
    (the child process of a peak-memory measurement) when ``memory_case``."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path(workdir))
    for name, default in (("--size", size), ("--dates", dates), ("--repeat", repeat)):
        if default is not None:
            parser.add_argument(name, type=int, default=default)
    if memory_case:
        parser.add_argument("--memory-case", nargs=3, metavar=("ROOT", "FRACTION", "OUT"))
    return parser


def write_report(result: Mapping[str, Any], path: Path, *, echo: bool = True) -> str:
    """Write ``result`` as indented JSON to ``path`` (folders made), print it when ``echo``."""
    text = json.dumps(result, indent=2)
    if echo:
        print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def print_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> None:
    """Print ``rows`` under ``columns`` given as ``(title, format spec)``, e.g. ``("wall s", ">10.1f")``.

    A title is aligned as its column: left for specs starting with ``<``, right otherwise.
    """
    widths = ["".join(ch for ch in spec.split(".")[0] if ch.isdigit()) for _, spec in columns]
    head = [
        f"{title:{'<' if spec.startswith('<') else '>'}{w}}"
        for (title, spec), w in zip(columns, widths, strict=True)
    ]
    print("".join(head))
    for row in rows:
        print("".join(f"{v:{spec}}" for v, (_, spec) in zip(row, columns, strict=True)))
