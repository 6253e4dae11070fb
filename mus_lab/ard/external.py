"""Sen2Cor and MAJA as managed external steps: Sentinel-2 L1C to L2A with their own configuration.

The processors are not Python libraries: they are installed programs (ESA's ``L2A_Process``, CNES's
``maja``). This module finds them (the ``sen2cor`` / ``maja`` settings, ``MUS_LAB_SEN2COR`` /
``MUS_LAB_MAJA``, else ``PATH``), runs them on a harvested L1C product with the configuration the
user gives (Sen2Cor's ``L2A_GIPP.xml``; MAJA's user configuration, GIPP and DTM folders),
captures their whole output in a log file, and on failure raises
:class:`~mus_lab.errors.ExternalToolError` quoting the log's last lines. The L2A products they write
become STAC items (:func:`mus_lab.ard.s2_product_item`) carrying their provenance (the L1C they
come from, the command, the log) and, when ``holdings`` is given, are registered there, ready for
:func:`mus_lab.ard.prepare_s2`.

Example
-------
>>> from mus_lab import set_options
>>> from mus_lab.ard import external
>>> with set_options(sen2cor="missing/L2A_Process"):
...     external.find_tool("sen2cor")
Traceback (most recent call last):
...
mus_lab.errors.ExternalToolError: The sen2cor setting points to missing/L2A_Process, ...
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pystac

from mus_lab._settings import get_settings
from mus_lab.ard._s2_products import s2_product_item
from mus_lab.errors import ExternalToolError

__all__ = ["ExternalRun", "find_tool", "run_maja", "run_sen2cor"]

Tool = Literal["sen2cor", "maja"]
#: Program names looked up on PATH when the setting is unset.
_PROGRAMS: Mapping[str, tuple[str, ...]] = {"sen2cor": ("L2A_Process",), "maja": ("maja",)}
_INSTALL = {
    "sen2cor": "install Sen2Cor (https://step.esa.int/main/snap-supported-plugins/sen2cor/)",
    "maja": "install MAJA (https://github.com/CNES/MAJA)",
}
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class ExternalRun:
    """What one run of an external processor did.

    Parameters
    ----------
    tool : str
        ``"sen2cor"`` or ``"maja"``.
    command : tuple of str
        The command line run.
    log : pathlib.Path
        The file holding the processor's whole output (stdout and stderr).
    products : tuple of pathlib.Path
        The L2A products written.
    items : tuple of pystac.Item
        One item per product, with its provenance (and registered when ``holdings`` was given).

    Raises
    ------
    None
        Nothing on purpose (a plain record).

    Examples
    --------
    >>> ExternalRun("sen2cor", ("L2A_Process", "x.SAFE"), Path("x.log"), (), ()).tool
    'sen2cor'
    """

    tool: str
    command: tuple[str, ...]
    log: Path
    products: tuple[Path, ...]
    items: tuple[pystac.Item, ...]


def find_tool(tool: Tool, *, executable: str | os.PathLike[str] | None = None) -> Path:
    """Where the processor's program is: ``executable``, else the setting, else ``PATH``.

    Parameters
    ----------
    tool : {"sen2cor", "maja"}
        Which processor.
    executable : str or os.PathLike, optional
        An explicit program (a path, or a name looked up on ``PATH``).

    Returns
    -------
    pathlib.Path
        The program, existing and executable.

    Raises
    ------
    ExternalToolError
        An unknown tool, or the program is not found (the message says how to install or
        configure it).

    Examples
    --------
    >>> find_tool("sen2cor", executable="missing/L2A_Process")
    Traceback (most recent call last):
    ...
    mus_lab.errors.ExternalToolError: The sen2cor executable points to missing/L2A_Process, ...
    """
    if tool not in _PROGRAMS:
        raise ExternalToolError(f"Unknown processor {tool!r}: choose among {sorted(_PROGRAMS)}.")
    configured = getattr(get_settings(), tool)
    given, origin = (
        (executable, "executable") if executable is not None else (configured, "setting")
    )
    if given is not None:
        found = shutil.which(str(given))
        if found is None:
            raise ExternalToolError(
                f"The {tool} {origin} points to {given}, which is not an executable program: "
                f"fix it (set_options({tool}=...) or MUS_LAB_{tool.upper()}) or {_INSTALL[tool]}."
            )
        return Path(found)
    for name in _PROGRAMS[tool]:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    raise ExternalToolError(
        f"{tool} is not installed here: no {' or '.join(_PROGRAMS[tool])} on PATH and no "
        f"MUS_LAB_{tool.upper()} setting. {_INSTALL[tool][0].upper()}{_INSTALL[tool][1:]}, "
        f"or point mus_lab.set_options({tool}=...) at its program."
    )


def _tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log was written)"
    return "\n".join(text[-lines:]) or "(the log is empty)"


def _run(
    tool: Tool,
    command: list[str],
    *,
    log: Path,
    cwd: Path,
    env: Mapping[str, str] | None,
    timeout: float | None,
    what: str,
) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with open(log, "w") as out:
        out.write(f"# mus_lab {tool} run {dt.datetime.now(dt.UTC).isoformat()}\n")
        out.write(f"# {shlex.join(command)}\n")
        out.flush()
        try:
            done = subprocess.run(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=full_env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ExternalToolError(
                f"{tool} did not finish {what} within {timeout} s; its log {log} ends with:\n"
                f"{_tail(log)}\nGive it more time (timeout=...) or a smaller job."
            ) from exc
        except OSError as exc:
            raise ExternalToolError(
                f"Cannot start {tool} ({command[0]}): {exc}. Check the program ({_INSTALL[tool]})."
            ) from exc
    if done.returncode != 0:
        raise ExternalToolError(
            f"{tool} failed (exit status {done.returncode}) {what}; its log {log} ends with:\n"
            f"{_tail(log)}\nFix the cause reported above (configuration, inputs) and run again."
        )


def _new_products(before: set[Path], output_dir: Path, pattern: str) -> list[Path]:
    return sorted(p for p in output_dir.glob(pattern) if p.resolve() not in before)


def _register(
    tool: Tool,
    products: Sequence[Path],
    *,
    source: Path,
    command: list[str],
    log: Path,
    holdings: Any,
) -> tuple[pystac.Item, ...]:
    items = []
    for product in products:
        item = s2_product_item(product)
        item.properties["processing:lineage"] = f"{tool}: L1C -> L2A ({shlex.join(command)})"
        item.properties["mus_lab:derived_from"] = source.name.removesuffix(".zip")
        item.add_link(pystac.Link("derived_from", str(source), title="L1C input"))
        item.add_asset(
            "processing-log",
            pystac.Asset(
                str(log), media_type="text/plain", roles=["metadata"], title=f"{tool} log"
            ),
        )
        items.append(item)
    if holdings is not None and items:
        from mus_lab.catalog import open_holdings

        target = (
            open_holdings(os.fspath(holdings))
            if isinstance(holdings, str | os.PathLike)
            else holdings
        )
        target.ingest(items)
    return tuple(items)


def _l1c_folder(l1c: Path, work_dir: Path) -> Path:
    """The L1C SAFE as a folder (the processors do not read zips): a zip is extracted once."""
    if l1c.is_dir():
        if not (l1c / "MTD_MSIL1C.xml").is_file():
            raise ExternalToolError(f"{l1c} has no MTD_MSIL1C.xml: give a Sentinel-2 L1C .SAFE.")
        return l1c
    if not zipfile.is_zipfile(l1c):
        raise ExternalToolError(f"{l1c} is neither a .SAFE folder nor a zip of one.")
    with zipfile.ZipFile(l1c) as zf:
        tops = {n.split("/", 1)[0] for n in zf.namelist()}
        safe = next((t for t in tops if t.endswith(".SAFE")), None)
        if safe is None or f"{safe}/MTD_MSIL1C.xml" not in zf.namelist():
            raise ExternalToolError(f"{l1c} holds no L1C .SAFE with its MTD_MSIL1C.xml.")
        target = work_dir / safe
        if not target.is_dir():
            zf.extractall(work_dir)
    return target


def run_sen2cor(
    l1c: str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str],
    config: str | os.PathLike[str] | None = None,
    resolution: Literal[10, 20, 60] | None = None,
    executable: str | os.PathLike[str] | None = None,
    holdings: Any = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> ExternalRun:
    """Run Sen2Cor (``L2A_Process``) on one L1C product and register the L2A it writes.

    Parameters
    ----------
    l1c : str or os.PathLike
        The L1C ``.SAFE`` folder, or its zip (extracted into ``output_dir/work`` first: Sen2Cor
        reads folders only).
    output_dir : str or os.PathLike
        Where Sen2Cor writes the L2A ``.SAFE`` (``--output_dir``) and mus_lab the log.
    config : str or os.PathLike, optional
        Sen2Cor's ``L2A_GIPP.xml`` (``--GIP_L2A``); default Sen2Cor's own.
    resolution : {10, 20, 60}, optional
        ``--resolution``; default all of them (Sen2Cor's default).
    executable : str or os.PathLike, optional
        The program; default :func:`find_tool` ``("sen2cor")``.
    holdings : str, os.PathLike or Holdings, optional
        Where to register the L2A items (:func:`mus_lab.catalog.open_holdings`).
    env : mapping, optional
        Extra environment variables for the run (``SEN2COR_HOME``...).
    timeout : float, optional
        Seconds before the run is abandoned.

    Returns
    -------
    ExternalRun
        The command, the log, the products and their items.

    Raises
    ------
    ExternalToolError
        Sen2Cor not found, not an L1C input, a failed run (with the log's last lines), or no
        L2A product written.
    ARDError
        The L2A written is incomplete (:func:`mus_lab.ard.s2_product_item`).

    Examples
    --------
    >>> run_sen2cor("missing/S2A_MSIL1C.SAFE", output_dir="out",
    ...             executable="missing/L2A_Process")
    Traceback (most recent call last):
    ...
    mus_lab.errors.ExternalToolError: The sen2cor executable points to missing/L2A_Process, ...
    """
    program = find_tool("sen2cor", executable=executable)
    out = Path(output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    source = Path(l1c).expanduser().resolve()
    if not source.exists():
        raise ExternalToolError(f"The L1C product {source} does not exist.")
    folder = _l1c_folder(source, out / "work")
    command = [str(program), str(folder), "--output_dir", str(out)]
    if resolution is not None:
        if resolution not in (10, 20, 60):
            raise ExternalToolError(f"resolution={resolution!r}: Sen2Cor takes 10, 20 or 60.")
        command += ["--resolution", str(resolution)]
    if config is not None:
        gipp = Path(config).expanduser().resolve()
        if not gipp.is_file():
            raise ExternalToolError(f"The Sen2Cor configuration {gipp} does not exist.")
        command += ["--GIP_L2A", str(gipp)]
    before = {p.resolve() for p in out.glob("*MSIL2A*.SAFE")}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    log = out / "logs" / f"sen2cor_{folder.name.removesuffix('.SAFE')}_{stamp}.log"
    _run("sen2cor", command, log=log, cwd=out, env=env, timeout=timeout, what=f"on {source.name}")
    products = _new_products(before, out, "*MSIL2A*.SAFE")
    if not products:
        raise ExternalToolError(
            f"sen2cor ended without error but wrote no *MSIL2A*.SAFE in {out}; its log {log} "
            f"ends with:\n{_tail(log)}"
        )
    items = _register(
        "sen2cor", products, source=source, command=command, log=log, holdings=holdings
    )
    return ExternalRun("sen2cor", tuple(command), log, tuple(products), items)


def run_maja(
    l1c: str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str],
    config: str | os.PathLike[str],
    gipp: str | os.PathLike[str],
    dtm: str | os.PathLike[str],
    tile: str,
    mode: Literal["L2INIT", "L2NOMINAL", "L2BACKWARD"] = "L2INIT",
    executable: str | os.PathLike[str] | None = None,
    holdings: Any = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> ExternalRun:
    """Run MAJA on one L1C product (``maja -i -o -m -ucs -w --TileId``) and register its L2A.

    MAJA reads one input folder holding the L1C, its GIPP files and the DTM: it is assembled
    in ``output_dir/work/input`` with symbolic links (nothing is copied).

    Parameters
    ----------
    l1c : str or os.PathLike
        The L1C ``.SAFE`` folder (or its zip, extracted into ``output_dir/work``).
    output_dir : str or os.PathLike
        Where MAJA writes the THEIA L2A folder, and mus_lab the log.
    config : str or os.PathLike
        MAJA's user configuration folder (``-ucs``).
    gipp : str or os.PathLike
        The folder of GIPP files for the satellite.
    dtm : str or os.PathLike
        The folder of the tile's DTM files (``*.DBL.DIR`` and ``*.HDR``).
    tile : str
        The MGRS tile (``"31TCJ"``), ``--TileId``.
    mode : {"L2INIT", "L2NOMINAL", "L2BACKWARD"}, optional
        MAJA's processing mode.
    executable, holdings, env, timeout
        As for :func:`run_sen2cor`.

    Returns
    -------
    ExternalRun
        The command, the log, the products and their items.

    Raises
    ------
    ExternalToolError
        MAJA not found, an input missing, a failed run (with the log's last lines), or no
        L2A product written.
    ARDError
        The L2A written is incomplete.

    Examples
    --------
    >>> run_maja("x.SAFE", output_dir="out", config="c", gipp="g", dtm="d", tile="31TCJ",
    ...          mode="L3", executable="missing/maja")
    Traceback (most recent call last):
    ...
    mus_lab.errors.ExternalToolError: mode='L3': MAJA's modes are L2INIT, L2NOMINAL, L2BACKWARD.
    """
    if mode not in ("L2INIT", "L2NOMINAL", "L2BACKWARD"):
        raise ExternalToolError(f"mode={mode!r}: MAJA's modes are L2INIT, L2NOMINAL, L2BACKWARD.")
    program = find_tool("maja", executable=executable)
    out = Path(output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    source = Path(l1c).expanduser().resolve()
    if not source.exists():
        raise ExternalToolError(f"The L1C product {source} does not exist.")
    folders = {"config": config, "gipp": gipp, "dtm": dtm}
    paths = {k: Path(v).expanduser().resolve() for k, v in folders.items()}
    for key, path in paths.items():
        if not path.is_dir():
            raise ExternalToolError(f"The MAJA {key} folder {path} does not exist.")
    work = out / "work"
    folder = _l1c_folder(source, work)
    inputs = work / "input"
    if inputs.exists():
        shutil.rmtree(inputs)
    inputs.mkdir(parents=True)
    (inputs / folder.name).symlink_to(folder)
    for path in (*paths["gipp"].iterdir(), *paths["dtm"].iterdir()):
        (inputs / path.name).symlink_to(path)
    command = [
        str(program), "-i", str(inputs), "-o", str(out), "-m", mode,
        "-ucs", str(paths["config"]), "-w", str(work / "maja"), "--TileId", tile.removeprefix("T"),
    ]  # fmt: skip
    pattern = "SENTINEL2*_L2A_T*"
    before = {p.resolve() for p in out.glob(pattern)}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    log = out / "logs" / f"maja_{folder.name.removesuffix('.SAFE')}_{stamp}.log"
    _run("maja", command, log=log, cwd=out, env=env, timeout=timeout, what=f"on {source.name}")
    products = [p for p in _new_products(before, out, pattern) if p.is_dir()]
    if not products:
        raise ExternalToolError(
            f"maja ended without error but wrote no {pattern} folder in {out}; its log {log} "
            f"ends with:\n{_tail(log)}"
        )
    items = _register("maja", products, source=source, command=command, log=log, holdings=holdings)
    return ExternalRun("maja", tuple(command), log, tuple(products), items)
