"""Declarative production chains: a YAML file naming steps, an area cut into tiles, a period.

A chain file::

    chain: sample-tiles                 # a name for the runs of this chain
    catalog: scenario/catalog.json      # where the inputs are (path relative to this file,
                                        # a STAC API URL or a postgresql:// holdings URL)
    period: 2022-04-01/2022-09-30       # optional, ISO interval
    registry: postgresql://lab@db.example/holdings  # optional job registry (default: the
                                        # setting MUS_LAB_REGISTRY, else <output>/registry.sqlite)
    output: runs/sample-tiles           # products, one folder per step (relative to this file)
    area:
      bbox: [-73.62, 45.45, -73.55, 45.50]  # lon/lat; the Sentinel-2 10 m UTM grid of it
      tile: 128                         # tile side in pixels (a GeoBox tiling of that grid)
    steps:
      ndvi:
        uses: s2.ndvi_median
      vv:
        uses: sar.mean_db
        options: {collection: sentinel-1-grd, band: vv}
      contrast:
        uses: python
        needs: [ndvi, vv]
        options: {function: "my_package.steps:contrast"}
    intermediates:                      # optional: what the steps keep besides products
      folder: runs/intermediates        # where (default <output>/intermediates)
      keep: {probabilities: 30d, conflict: forever, features: 12h}

An intermediate a later step reads but the chain does not keep (fusion reads the land
cover's ``probabilities``) is written anyway, with lifetime ``run``: removed once the run
is done. Lifetimes: ``run``, ``forever``, or a number with ``s``, ``m``, ``h``, ``d``
(counted from the end of the task that wrote it); ``mus-lab chain prune`` (and every run's
end) removes the expired ones.

Everything is checked by :func:`load_chain` before anything runs: an unknown step kind, a
missing or unknown option, a ``needs`` naming no step, a cycle, a tile that no input item
covers: a :class:`ChainError` naming the fix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from odc.geo.geobox import GeoBox, GeoboxTiles

from mus_lab.errors import ChainError

__all__ = ["AreaSpec", "ChainSpec", "IntermediatesSpec", "StepSpec", "TileSpec", "load_chain"]

_TOP_KEYS = {"chain", "catalog", "period", "output", "area", "steps", "intermediates"}
_KEEP_KEYS = {"folder", "keep"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_AREA_KEYS = {"bbox", "crs", "resolution", "tile"}
_STEP_KEYS = {"uses", "options", "needs"}
_REGISTRY_KEY = "registry"  # a postgresql:// URL or an SQLite file (see registry_location)


@dataclass(frozen=True)
class StepSpec:
    """One step of a chain: a step kind (``uses``), its options and the steps it needs."""

    name: str
    uses: str
    options: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class AreaSpec:
    """The area: a lon/lat bbox, its grid (CRS, resolution) and the tile side in pixels."""

    bbox: tuple[float, float, float, float]
    tile: int = 1024
    resolution: float = 10.0
    crs: str | None = None


@dataclass(frozen=True)
class TileSpec:
    """One tile of the area: its id (``r<row>c<col>``) and its pixel grid."""

    id: str
    geobox: GeoBox

    @property
    def bbox_lonlat(self) -> tuple[float, float, float, float]:
        """The tile's footprint as ``(min_lon, min_lat, max_lon, max_lat)``."""
        box = self.geobox.extent.to_crs("EPSG:4326").boundingbox
        return (box.left, box.bottom, box.right, box.top)


@dataclass(frozen=True)
class IntermediatesSpec:
    """Which intermediates a chain keeps, where, and for how long.

    Attributes
    ----------
    folder
        Where they are written (``<folder>/<step>/<tile>_<name>.tif``).
    keep
        ``{name: lifetime}``: lifetime in seconds, ``None`` for ever, ``0`` until the
        run is done.
    """

    folder: Path
    keep: Mapping[str, float | None] = field(default_factory=dict)

    def lifetime(self, name: str) -> float | None:
        """The lifetime of intermediate ``name`` in seconds (0 when not kept: the run's).

        Parameters
        ----------
        name
            An intermediate.

        Returns
        -------
        float or None
            Seconds; ``None`` for ever.
        """
        return self.keep.get(name, 0.0)


def parse_lifetime(value: Any, *, where: str = "") -> float | None:
    """A lifetime (``run``, ``forever``, ``90s``, ``15m``, ``12h``, ``30d``) in seconds.

    Parameters
    ----------
    value
        The text (a bare number is days).
    where
        Appended to the message.

    Returns
    -------
    float or None
        Seconds; ``0`` for ``run``; ``None`` for ``forever``.

    Raises
    ------
    ChainError
        Not a lifetime.

    Examples
    --------
    >>> parse_lifetime("12h"), parse_lifetime("run"), parse_lifetime("forever")
    (43200.0, 0.0, None)
    """
    text = str(value).strip().lower()
    if text == "forever":
        return None
    if text == "run":
        return 0.0
    unit = _UNITS.get(text[-1:], None)
    number = text[:-1] if unit is not None else text
    try:
        seconds = float(number) * (unit or 86400)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ChainError(
            f"Lifetime {value!r}{where} is not one: write run, forever, or a number with s, "
            "m, h or d (30d)."
        )
    return seconds


@dataclass(frozen=True)
class ChainSpec:
    """A checked chain: steps in an order where every step comes after what it needs."""

    name: str
    catalog: str
    output: Path
    area: AreaSpec
    steps: tuple[StepSpec, ...]
    period: str | None = None
    registry: str | None = field(default=None, repr=False)  # may hold a password: not shown
    source: Path | None = None
    intermediates: IntermediatesSpec | None = None

    def keeps(self) -> IntermediatesSpec:
        """The chain's intermediates (default: none kept, in ``<output>/intermediates``).

        Returns
        -------
        IntermediatesSpec
            Folder and lifetimes.
        """
        return self.intermediates or IntermediatesSpec(self.output / "intermediates")

    def step(self, name: str) -> StepSpec:
        """Return the step called ``name``.

        Parameters
        ----------
        name
            The step's name in the chain file.

        Returns
        -------
        StepSpec
            The step.

        Raises
        ------
        ChainError
            No step has that name.
        """
        for step in self.steps:
            if step.name == name:
                return step
        raise ChainError(f"Chain {self.name!r} has no step {name!r}: its steps are {self.names}.")

    @property
    def names(self) -> list[str]:
        """The step names, in running order."""
        return [s.name for s in self.steps]

    def grid(self) -> GeoBox:
        """The area's pixel grid (the Sentinel-2 10 m UTM grid of the bbox by default).

        Returns
        -------
        odc.geo.geobox.GeoBox
            The grid the tiles cut.
        """
        from mus_lab import cube

        return cube.reference_geobox(
            bbox=self.area.bbox, resolution=self.area.resolution, crs=self.area.crs
        )

    def tiles(self) -> list[TileSpec]:
        """Cut the grid into tiles of ``area.tile`` pixels (edge tiles are smaller).

        Returns
        -------
        list of TileSpec
            Row-major, ids ``r<row>c<col>``.
        """
        tiling = GeoboxTiles(self.grid(), (self.area.tile, self.area.tile))
        rows, cols = tiling.shape.yx
        return [
            TileSpec(f"r{r}c{c}", cast(GeoBox, tiling[r, c]))
            for r in range(rows)
            for c in range(cols)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The chain as plain data (what the job registry stores; not the registry itself).

        Returns
        -------
        dict
            JSON-serialisable.
        """
        return {
            "chain": self.name,
            "catalog": self.catalog,
            "output": str(self.output),
            "period": self.period,
            "area": {
                "bbox": list(self.area.bbox),
                "tile": self.area.tile,
                "resolution": self.area.resolution,
                "crs": self.area.crs,
            },
            "steps": {
                s.name: {"uses": s.uses, "options": dict(s.options), "needs": list(s.needs)}
                for s in self.steps
            },
            "intermediates": {
                "folder": str(self.keeps().folder),
                "keep": dict(self.keeps().keep),
            },
        }

    def digest(self) -> str:
        """A sha256 of the chain's content (paths resolved), to tell changed chains apart.

        Returns
        -------
        str
            Hex digest.
        """
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _where(source: Path | None) -> str:
    return f" in {source}" if source else ""


def registry_location(value: Any, base: Path, *, where: str = "") -> str:
    """The job registry a chain file (or the setting) names: a database URL or a file.

    Parameters
    ----------
    value
        A ``postgresql://`` URL, or an SQLite file path (relative to ``base``).
    base
        The chain file's folder.
    where
        Where it was found, for the message.

    Returns
    -------
    str
        The URL as given, or the file's absolute path.

    Raises
    ------
    ChainError
        A URL of another scheme, or a malformed PostgreSQL URL (shown without its password).

    Examples
    --------
    >>> registry_location("postgresql://lab@127.0.0.1/holdings", Path("."))
    'postgresql://lab@127.0.0.1/holdings'
    >>> registry_location("pgsql://lab:s3cret@db/x", Path("."))
    Traceback (most recent call last):
    ...
    mus_lab.errors.ChainError: registry 'pgsql://lab:***@db/x' is not a PostgreSQL URL: write postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or the path of an SQLite file.
    """
    from mus_lab.production._registry_pg import check_registry_url

    text = str(value).strip()
    if not text:
        raise ChainError(f"registry{where} is empty: give a postgresql:// URL or a file path.")
    if "://" in text:
        if not text.startswith(("postgresql://", "postgres://")):
            from mus_lab.catalog._pgstac import redact_url

            raise ChainError(
                f"registry {redact_url(text)!r}{where} is not a PostgreSQL URL: write "
                "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or the path of an SQLite file."
            )
        return check_registry_url(text, where=where)
    return str((base / text).resolve())


def _require_mapping(value: Any, what: str, source: Path | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ChainError(
            f"{what}{_where(source)} must be a mapping (key: value lines), not {type(value).__name__}."
        )
    return value


def _unknown_keys(
    data: Mapping[str, Any], allowed: set[str], what: str, source: Path | None
) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ChainError(
            f"Unknown key(s) {extra} in {what}{_where(source)}: allowed are {sorted(allowed)}."
        )


def _order(steps: Sequence[StepSpec], source: Path | None) -> tuple[StepSpec, ...]:
    by_name = {s.name: s for s in steps}
    for step in steps:
        for need in step.needs:
            if need not in by_name:
                raise ChainError(
                    f"Step {step.name!r}{_where(source)} needs {need!r}, which is not a step of "
                    f"this chain: its steps are {sorted(by_name)}."
                )
    ordered: list[StepSpec] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*path[path.index(name) :], name]
            raise ChainError(
                f"The steps{_where(source)} form a cycle: {' -> '.join(cycle)}. "
                "Remove one of these needs."
            )
        state[name] = "visiting"
        for need in by_name[name].needs:
            visit(need, [*path, name])
        state[name] = "done"
        ordered.append(by_name[name])

    for step in steps:
        visit(step.name, [])
    return tuple(ordered)


def _area(data: Any, source: Path | None) -> AreaSpec:
    area = _require_mapping(data, "area", source)
    _unknown_keys(area, _AREA_KEYS, "area", source)
    bbox = area.get("bbox")
    if not (isinstance(bbox, Sequence) and len(bbox) == 4):
        raise ChainError(
            f"area.bbox{_where(source)} must be [min_lon, min_lat, max_lon, max_lat], got {bbox!r}."
        )
    try:
        box = tuple(float(v) for v in bbox)
        tile = int(area.get("tile", 1024))
        resolution = float(area.get("resolution", 10.0))
    except (TypeError, ValueError) as exc:
        raise ChainError(f"area{_where(source)} has a value that is not a number: {exc}.") from exc
    if not (-180 <= box[0] < box[2] <= 180 and -90 <= box[1] < box[3] <= 90):
        raise ChainError(
            f"area.bbox{_where(source)} {list(box)} is not a lon/lat box with min < max."
        )
    if tile < 16 or resolution <= 0:
        raise ChainError(
            f"area{_where(source)}: tile must be at least 16 px and resolution positive "
            f"(got tile {tile}, resolution {resolution})."
        )
    crs = area.get("crs")
    return AreaSpec((box[0], box[1], box[2], box[3]), tile, resolution, str(crs) if crs else None)


def _intermediates(data: Any, base: Path, output: Path, source: Path | None) -> IntermediatesSpec:
    from mus_lab.production._tilesteps import INTERMEDIATES

    spec = _require_mapping(data or {}, "intermediates", source)
    _unknown_keys(spec, _KEEP_KEYS, "intermediates", source)
    keep = _require_mapping(spec.get("keep") or {}, "intermediates.keep", source)
    unknown = sorted(set(keep) - set(INTERMEDIATES))
    if unknown:
        raise ChainError(
            f"intermediates.keep{_where(source)} names {unknown}: the intermediates are "
            f"{list(INTERMEDIATES)}."
        )
    folder = spec.get("folder")
    return IntermediatesSpec(
        (base / str(folder)).resolve() if folder else output / "intermediates",
        {str(k): parse_lifetime(v, where=f" of {k}{_where(source)}") for k, v in keep.items()},
    )


def load_chain(chain: str | Path | Mapping[str, Any]) -> ChainSpec:
    """Read and check a chain file (YAML) or mapping.

    The step kinds and their options are checked against the registered steps
    (:func:`mus_lab.production.step_kinds`); whether the tiles are covered by input items
    is checked by :func:`mus_lab.production.check_coverage` (it searches the catalog).

    Parameters
    ----------
    chain
        Path of a YAML chain file, or its content as a mapping (paths are then relative to
        the current folder).

    Returns
    -------
    ChainSpec
        The steps ordered so that each comes after the steps it needs.

    Raises
    ------
    ChainError
        The file is missing or not YAML; ``registry`` is not a URL or a path; a key is
        unknown or missing; a step kind is
        unknown; an option is missing or unknown; ``needs`` names no step; the steps form
        a cycle; an unknown intermediate or lifetime; a land-cover step needs an ARD step
        that cannot give its model's features (a band, a polarisation, the speckle or cloud
        filter, the period); a fusion option out of its choices, or ``confusion: held-out``
        with a model that records no held-out confusion matrix.

    Examples
    --------
    >>> spec = load_chain({
    ...     "chain": "demo", "catalog": "catalog.json", "output": "out",
    ...     "area": {"bbox": [-73.62, 45.45, -73.55, 45.50], "tile": 256},
    ...     "steps": {"vv": {"uses": "sar.mean_db", "options": {"band": "vh"}},
    ...               "ndvi": {"uses": "s2.ndvi_median", "needs": ["vv"]}}})
    >>> spec.names, len(spec.tiles())
    (['vv', 'ndvi'], 9)
    """
    import yaml

    from mus_lab.production._ardinputs import reads_ard
    from mus_lab.production._tilesteps import check_step, options_with_defaults, resolve_paths

    source: Path | None = None
    if isinstance(chain, str | Path):
        source = Path(chain)
        try:
            data = yaml.safe_load(source.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ChainError(
                f"No chain file {source}: give the path of a chain YAML file."
            ) from exc
        except yaml.YAMLError as exc:
            raise ChainError(f"{source} is not valid YAML: {exc}") from exc
        base = source.parent
    else:
        data, base = chain, Path.cwd()
    data = _require_mapping(data, "The chain", source)
    _unknown_keys(data, _TOP_KEYS | {_REGISTRY_KEY}, "the chain", source)
    for key in ("chain", "catalog", "output", "area", "steps"):
        if key not in data:
            raise ChainError(
                f"The chain{_where(source)} has no {key!r}: add it (example: chains/sample-tiles.yaml)."
            )
    catalog = str(data["catalog"])
    if "://" not in catalog:
        catalog = str((base / catalog).resolve())
    steps_data = _require_mapping(data["steps"], "steps", source)
    if not steps_data:
        raise ChainError(f"The chain{_where(source)} has no steps: add at least one.")
    steps = []
    for name, raw in steps_data.items():
        step = _require_mapping(raw, f"step {name!r}", source)
        _unknown_keys(step, _STEP_KEYS, f"step {name!r}", source)
        if "uses" not in step:
            raise ChainError(f"Step {name!r}{_where(source)} has no 'uses': name its step kind.")
        needs = step.get("needs") or ()
        if isinstance(needs, str):
            needs = (needs,)
        options = dict(_require_mapping(step.get("options") or {}, f"options of {name!r}", source))
        spec = StepSpec(str(name), str(step["uses"]), options, tuple(str(n) for n in needs))
        check_step(spec, where=_where(source))
        steps.append(resolve_paths(spec, base))
    period = data.get("period")
    output = (base / str(data["output"])).resolve()
    ordered = _order(steps, source)
    by_name = {s.name: s for s in ordered}
    for spec in ordered:  # a step reading ARD: can the ARD step give what it computes from?
        reads_ard(spec, by_name, period=str(period) if period else None, where=_where(source))
    chain_spec = ChainSpec(
        name=str(data["chain"]),
        catalog=catalog,
        output=output,
        intermediates=_intermediates(data.get("intermediates"), base, output, source),
        area=_area(data["area"], source),
        steps=ordered,
        period=str(period) if period else None,
        source=source.resolve() if source else None,
        registry=(
            registry_location(data[_REGISTRY_KEY], base, where=_where(source))
            if data.get(_REGISTRY_KEY) is not None
            else None
        ),
    )
    for spec in ordered:  # options resolved in the chain (fusion's matrices): checked now
        options_with_defaults(spec, chain_spec)
    return chain_spec
