"""Step kinds of production chains: what one step does on one tile.

A step kind is a function ``run(task) -> Mapping[str, Path]`` that reads its inputs for
``task.tile`` (from the chain's catalog and from the outputs of the steps it needs) and
writes its outputs under ``task.folder`` (temporary name, then rename), returning them by
name. It runs inside one Dask task on a worker, computing its own small graph with the
synchronous scheduler: the cluster's parallelism is over tiles, so a worker's memory is
bounded by one tile, whatever the area.

Built in:

``s2.ndvi_median``
    Median NDVI of the clear (SCL) Sentinel-2 observations of the period: from the
    ``ard.s2`` step it needs, else from the catalog.
``sar.mean_db``
    Temporal mean backscatter of one SAR band (linear mean, written in dB): from the
    ``ard.sar`` step it needs (calibrated), else from the catalog's assets.
``landcover.predict``
    The land-cover map (``<tile>.tif``) and confidence (``<tile>_confidence.tif``) of a
    saved model (option ``model``), its features rebuilt on the tile from its recipe: from
    the files of the ``ard.s2`` / ``ard.sar`` steps it needs, else from the catalog.
``python``
    Any function ``module:callable`` taking the :class:`TileTask` and returning a
    DataArray on the tile's grid (written as ``<tile>.tif``) or a mapping of written files.

:func:`register_step` adds kinds.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab.errors import ChainError, StepError

__all__ = ["StepKind", "TileTask", "register_step", "step_kinds"]


@dataclass(frozen=True)
class TileTask:
    """Everything one step needs on one tile; built by the runner, sent to a worker.

    Attributes
    ----------
    step, uses, tile
        Step name, step kind and tile id.
    geobox
        The tile's pixel grid.
    catalog, period
        Where the inputs are and the chain's period (``None``: every date).
    options
        The step's options from the chain file.
    folder
        Where the step writes (``<output>/<step>``).
    inputs
        Outputs of the steps it needs on this tile: ``{step: {name: path}}`` (filled on
        the worker, once they are done).
    keep
        The intermediates (``features``, ``probabilities``, ``masses``, ``conflict``) this
        task writes besides its products: those the chain keeps and those a later step
        reads.
    scratch
        Where it writes them (``<intermediates folder>/<step>``).
    scene
        For a scene-wide step: what its reduction over every tile gave (a threshold ...).
    ard
        ``{collection: [needed ard.* steps]}``: the collections a land-cover step reads
        from the ARD files of the steps it needs rather than from the catalog.
    """

    step: str
    uses: str
    tile: str
    geobox: GeoBox
    catalog: str
    period: str | None
    options: Mapping[str, Any]
    folder: Path
    inputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    keep: frozenset[str] = frozenset()
    scratch: Path | None = None
    scene: Mapping[str, Any] = field(default_factory=dict)
    ard: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def bbox_lonlat(self) -> tuple[float, float, float, float]:
        """The tile's footprint in degrees."""
        box = self.geobox.extent.to_crs("EPSG:4326").boundingbox
        return (box.left, box.bottom, box.right, box.top)

    def path(self, suffix: str = ".tif") -> Path:
        """The default output path of this task: ``<folder>/<tile><suffix>``.

        Parameters
        ----------
        suffix
            File suffix.

        Returns
        -------
        Path
            Not created.
        """
        return self.folder / f"{self.tile}{suffix}"

    def intermediate_path(self, name: str, suffix: str = ".tif") -> Path:
        """Where this task writes intermediate ``name``: ``<scratch>/<tile>_<name><suffix>``.

        Parameters
        ----------
        name
            ``features``, ``probabilities``, ``masses`` or ``conflict``.
        suffix
            File suffix.

        Returns
        -------
        Path
            Its folder is created.
        """
        folder = self.scratch if self.scratch is not None else self.folder
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{self.tile}_{name}{suffix}"

    def read(self, step: str, name: str | None = None) -> xr.DataArray:
        """Open the output of a needed step on this tile, lazily.

        Parameters
        ----------
        step
            A step this one needs.
        name
            Which output (default: the step's only one).

        Returns
        -------
        xarray.DataArray
            On this tile's grid.

        Raises
        ------
        StepError
            ``step`` is not one this step needs, or has several outputs and no ``name``.
        """
        from mus_lab.publish import open_raster

        outputs = self.inputs.get(step)
        if outputs is None:
            raise StepError(
                f"Step {self.step!r} reads {step!r}, which it does not need: add it to its needs."
            )
        if name is None:
            if len(outputs) != 1:
                raise StepError(f"Step {step!r} has outputs {sorted(outputs)}: name one.")
            name = next(iter(outputs))
        if name not in outputs:
            raise StepError(
                f"Step {step!r} wrote no {name!r} on tile {self.tile}: it wrote {sorted(outputs)}."
            )
        return open_raster(
            outputs[name], chunks=None, bands="class" if name == "probabilities" else None
        )

    def search(self, collection: str, **query: Any) -> Any:
        """Search the chain's catalog for ``collection`` over this tile and period.

        Parameters
        ----------
        collection
            Collection id.
        **query
            More search arguments (``max_cloud`` ...).

        Returns
        -------
        mus_lab.catalog.SearchResult
            The items.

        Raises
        ------
        StepError
            No item covers the tile in the period.
        """
        from mus_lab import catalog

        found = catalog.search(
            self.catalog,
            collections=collection,
            bbox=self.bbox_lonlat,
            datetime=self.period,
            **query,
        )
        if not len(found):
            raise StepError(
                f"No {collection} item covers tile {self.tile} in {self.period or 'any period'}."
            )
        return found


@dataclass(frozen=True)
class StepKind:
    """A registered step kind.

    Attributes
    ----------
    name
        What chain files write in ``uses``.
    run
        ``run(task) -> {name: path}``: the work on one tile.
    required, optional
        Option names it needs, and the others with their defaults.
    collections
        ``collections(options) -> ids`` of the catalog collections it reads (checked to
        cover every tile before a run); ``None``: it reads none.
    description
        One line for listings.
    paths
        Options that are file paths: resolved against the chain file's folder, and their
        content is part of the tasks' fingerprint (a retrained model re-runs its tasks).
    intermediates
        The intermediates it can write (when the chain keeps them, or a later step reads
        them): returned among its outputs under these names.
    reads
        ``reads(options) -> {step option or "needs": intermediate}``: the intermediates it
        reads from the steps it needs (so that they write them), e.g. fusion reads
        ``probabilities``.
    sample, reduce
        A scene-wide step: ``sample(task) -> value`` runs on every tile first (a histogram
        ...), ``reduce(values, options) -> dict`` turns them into one result for the scene
        (a threshold), then ``run`` runs on every tile with it in ``task.scene``. The
        reduction must not depend on the tiles' order, so that a re-run writes the same
        bytes.
    resolve
        ``resolve(options, step, chain) -> options``: the options with what they mean in
        this chain, checked before anything runs (a :class:`ChainError` naming the fix) and
        recorded in the tasks' parameters, e.g. fusion's confusion matrices of the models
        it fuses.
    """

    name: str
    run: Callable[[TileTask], Mapping[str, Path]]
    required: frozenset[str] = frozenset()
    optional: Mapping[str, Any] = field(default_factory=dict)
    collections: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None
    description: str = ""
    paths: tuple[str, ...] = ()
    intermediates: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    sample: Callable[[TileTask], Any] | None = None
    reduce: Callable[[list[Any], Mapping[str, Any]], dict[str, Any]] | None = None
    resolve: Callable[[dict[str, Any], Any, Any], dict[str, Any]] | None = None

    @property
    def scene_wide(self) -> bool:
        """True for a two-stage step (a sample of every tile, then the tiles)."""
        return self.sample is not None


INTERMEDIATES = ("features", "probabilities", "masses", "conflict")
"""The intermediate results a chain may keep (``intermediates.keep`` of a chain file)."""

_KINDS: dict[str, StepKind] = {}


def register_step(kind: StepKind) -> StepKind:
    """Register a step kind under ``kind.name`` (replacing one of the same name).

    Parameters
    ----------
    kind
        The step kind.

    Returns
    -------
    StepKind
        ``kind``, so that it can be used as a statement's value.

    Raises
    ------
    ChainError
        A scene-wide kind without both ``sample`` and ``reduce``, or an intermediate not
        in :data:`INTERMEDIATES`.
    """
    if (kind.sample is None) != (kind.reduce is None):
        raise ChainError(f"Step kind {kind.name!r}: give both sample and reduce, or neither.")
    unknown = sorted((set(kind.intermediates) | set(kind.reads)) - set(INTERMEDIATES))
    if unknown:
        raise ChainError(
            f"Step kind {kind.name!r}: unknown intermediate(s) {unknown}; use {list(INTERMEDIATES)}."
        )
    _KINDS[kind.name] = kind
    return kind


def step_kinds() -> dict[str, StepKind]:
    """The registered step kinds by name.

    Returns
    -------
    dict
        A copy.

    Examples
    --------
    >>> sorted(step_kinds())  # doctest: +NORMALIZE_WHITESPACE
    ['ard.s2', 'ard.sar', 'flood.water', 'fusion.fuse', 'landcover.predict', 'python',
     's2.ndvi_median', 'sar.mean_db']
    """
    return dict(_KINDS)


def check_step(step: Any, *, where: str = "") -> None:
    """Check a step's kind and options; raise a :class:`ChainError` naming the fix.

    Parameters
    ----------
    step
        A :class:`~mus_lab.production.StepSpec`.
    where
        Appended to messages (`` in <file>``).

    Raises
    ------
    ChainError
        Unknown kind, missing or unknown option, or a ``python`` function that cannot be
        imported.
    """
    kind = _KINDS.get(step.uses)
    if kind is None:
        raise ChainError(
            f"Step {step.name!r}{where} uses {step.uses!r}, which is not a step kind: "
            f"known kinds are {sorted(_KINDS)}."
        )
    missing = sorted(kind.required - set(step.options))
    if missing:
        raise ChainError(
            f"Step {step.name!r}{where} ({step.uses}) is missing option(s) {missing}: add them "
            "under its options."
        )
    unknown = sorted(set(step.options) - kind.required - set(kind.optional))
    if unknown:
        allowed = sorted(kind.required | set(kind.optional))
        raise ChainError(
            f"Step {step.name!r}{where} ({step.uses}) has unknown option(s) {unknown}: "
            f"allowed are {allowed}."
        )
    if step.uses == "python":
        _import_function(str(step.options["function"]), step.name, where)


def collections_of(step: Any, spec: Any = None) -> tuple[str, ...]:
    """The input collections a step reads from the catalog.

    Parameters
    ----------
    step
        A :class:`~mus_lab.production.StepSpec`.
    spec
        Its :class:`~mus_lab.production.ChainSpec`: the collections a land-cover step reads
        from the ARD files of the steps it needs are then left out.

    Returns
    -------
    tuple of str
        Collection ids (empty when it reads only other steps' outputs).
    """
    kind = _KINDS[step.uses]
    if kind.collections is None:
        return ()
    found = kind.collections({**kind.optional, **step.options})
    if spec is not None:
        served = ard_of(step, spec)
        found = tuple(c for c in found if c not in served)
    return found


def ard_of(step: Any, spec: Any) -> dict[str, tuple[str, ...]]:
    """``{collection: ARD steps}`` a step reads from its needs' ARD files, not the catalog.

    Land cover (the collections of its model's recipe), ``s2.ndvi_median`` (an ``ard.s2``)
    and ``sar.mean_db`` (an ``ard.sar``).

    Parameters
    ----------
    step
        A :class:`~mus_lab.production.StepSpec` of ``spec``.
    spec
        The :class:`~mus_lab.production.ChainSpec`.

    Returns
    -------
    dict
        Empty for other step kinds, or when it needs no ARD step of its kind.

    Raises
    ------
    ChainError
        A needed ARD step cannot give the step's inputs (``_ardinputs.reads_ard``).
    """
    from mus_lab.production._ardinputs import reads_ard

    plan = reads_ard(step, {s.name: s for s in spec.steps}, period=spec.period)
    return {c: tuple(names) for c, names in plan.items()}


def _import_function(spec: str, step: str, where: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ChainError(
            f"Step {step!r}{where}: function {spec!r} must read 'package.module:function'."
        )
    try:
        func = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ChainError(
            f"Step {step!r}{where}: cannot import {spec!r} ({exc}); install its package or "
            "fix the name."
        ) from exc
    if not callable(func):
        raise ChainError(f"Step {step!r}{where}: {spec!r} is not callable.")
    return func  # type: ignore[no-any-return]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes (hex).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(data: xr.DataArray, task: TileTask, *, nodata: float = float("nan")) -> dict[str, Path]:
    from mus_lab._io import write_cog

    task.folder.mkdir(parents=True, exist_ok=True)
    return {
        data.name if isinstance(data.name, str) else task.step: write_cog(
            data, task.path(), nodata=nodata, overview_resampling="average"
        )
    }


def _ard_file(task: TileTask) -> Path | None:
    """The file of the ARD step the task reads for its collection, if it reads one."""
    needs = task.ard.get(str(task.options["collection"]))
    return Path(next(iter(task.inputs[needs[0]].values()))) if needs else None


def _ndvi_median(task: TileTask) -> Mapping[str, Path]:
    from mus_lab import cube
    from mus_lab.production._demo import ndvi_median, s2_clear_ndvi_median

    path = _ard_file(task)
    if path is not None:  # the ard.s2 step's clear reflectance
        from mus_lab.production._ardinputs import read_s2

        s2 = read_s2(path)
        return _write(ndvi_median(s2.red.where(s2.red > 0), s2.nir.where(s2.nir > 0)), task)
    found = task.search(task.options["collection"], max_cloud=task.options["max_cloud"])
    s2 = cube.load(found, ("red", "nir", "scl"), geobox=task.geobox, chunks=task.geobox.shape[0])
    return _write(s2_clear_ndvi_median(s2), task)


def _mean_db(task: TileTask) -> Mapping[str, Path]:
    from mus_lab import cube

    band = str(task.options["band"])
    path = _ard_file(task)
    if path is not None:  # the ard.sar step's calibrated backscatter (dB)
        from mus_lab.ard import from_db
        from mus_lab.production._ardinputs import read_sar

        ard_db = read_sar([path])[band.lower()]
        mean = from_db(ard_db.astype("float64")).mean("time", skipna=True)
    else:
        found = task.search(task.options["collection"])
        sar = cube.load(found, (band,), geobox=task.geobox, chunks=task.geobox.shape[0])
        mean = sar[band].where(sar[band] > 0).mean("time", skipna=True)
    db = (10 * xr.apply_ufunc(np.log10, mean, dask="allowed")).astype("float32")
    db.name = f"{band}_mean_db"
    return _write(db, task)


def _python(task: TileTask) -> Mapping[str, Path]:
    func = _import_function(str(task.options["function"]), task.step, "")
    result = func(task)
    if isinstance(result, xr.DataArray):
        return _write(result, task)
    if isinstance(result, Mapping):
        return {str(k): Path(v) for k, v in result.items()}
    raise StepError(
        f"Step {task.step!r}: {task.options['function']} returned {type(result).__name__}; "
        "return a DataArray on the tile's grid or a mapping of written files."
    )


register_step(
    StepKind(
        "s2.ndvi_median",
        _ndvi_median,
        optional={"collection": "sentinel-2-l2a", "max_cloud": 80},
        collections=lambda o: (str(o["collection"]),),
        description="Median NDVI of the clear Sentinel-2 observations of the period.",
    )
)
register_step(
    StepKind(
        "sar.mean_db",
        _mean_db,
        optional={"collection": "sentinel-1-grd", "band": "vv"},
        collections=lambda o: (str(o["collection"]),),
        description="Temporal mean of one SAR band (linear mean, in dB).",
    )
)


def _model_collections(model: str) -> tuple[str, ...]:
    """The collections a saved model's feature recipe reads (from its ``metadata.json``)."""
    from mus_lab.classify import FeatureOptions
    from mus_lab.production._ardinputs import model_recipe

    recipe = model_recipe(model)
    if not recipe.get("sensors"):
        return ()
    opts = FeatureOptions.from_dict(recipe)
    out: tuple[str, ...] = ()
    if opts.sensors in ("optical", "stacked"):
        out += (opts.optical_source,)
    if opts.sensors in ("radar", "stacked"):
        out += tuple(opts.radar_sources)
    return out


def _landcover_predict(task: TileTask) -> Mapping[str, Path]:
    from mus_lab import classify, recipes
    from mus_lab._io import write_cog

    model = classify.load_model(task.options["model"])
    recipe = model.metadata.recipe
    if not recipe.get("sensors"):
        raise StepError(
            f"Model {task.options['model']} records no feature recipe: train it with "
            "recipes.features_from_catalog (or mus-lab landcover train) so that a chain can "
            "rebuild its features."
        )
    if task.ard:  # the chain's own ARD files, the catalog only for what they do not give
        from mus_lab.production._ardinputs import features_of_task

        feats = features_of_task(task, recipe)
    else:
        feats, _, _ = recipes.features_from_catalog(
            task.catalog,
            classify.FeatureOptions.from_dict(recipe),
            bbox=task.bbox_lonlat,
            datetime=recipe.get("datetime"),
            geobox=task.geobox,
            chunks=max(task.geobox.shape.yx),
        )
    result = classify.predict(feats, model)
    task.folder.mkdir(parents=True, exist_ok=True)
    out = {
        "classification": write_cog(result.classification, task.path(), nodata=0),
        "confidence": write_cog(result.confidence, task.path("_confidence.tif"), nodata=255),
    }
    if "probabilities" in task.keep:
        prob = result.probability
        out["probabilities"] = write_cog(
            prob.astype("float32"),
            task.intermediate_path("probabilities"),
            nodata=float("nan"),
            band_names=[str(int(c)) for c in prob["class"].values],
        )
    if "features" in task.keep:
        out["features"] = write_cog(
            feats.astype("float32"),
            task.intermediate_path("features"),
            nodata=float("nan"),
            band_names=[str(f) for f in feats[feats.dims[0]].values],
        )
    return out


register_step(
    StepKind(
        "landcover.predict",
        _landcover_predict,
        required=frozenset({"model"}),
        collections=lambda o: _model_collections(str(o["model"])),
        description="Land-cover map and confidence of a saved model, features rebuilt per tile.",
        paths=("model",),
        intermediates=("features", "probabilities"),
    )
)
register_step(
    StepKind(
        "python",
        _python,
        required=frozenset({"function"}),
        optional={"collections": []},
        collections=lambda o: tuple(str(c) for c in o.get("collections") or ()),
        description="A function module:callable(task) -> DataArray or {name: path}.",
    )
)


def path_state(path: str | os.PathLike[str]) -> list[tuple[str, int, int]]:
    """Size and modification time of a file, or of every file under a folder.

    Parameters
    ----------
    path
        A file or folder.

    Returns
    -------
    list of (relative name, size, mtime in ns)
        Empty when the path does not exist.
    """
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [
        (str(p.relative_to(root)) if p != root else p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in files
    ]


def resolve_paths(step: Any, base: Path) -> Any:
    """The step with its path options made absolute against ``base``.

    Parameters
    ----------
    step
        A :class:`~mus_lab.production.StepSpec` already checked.
    base
        The chain file's folder.

    Returns
    -------
    StepSpec
        A copy when some path changed.
    """
    from dataclasses import replace

    kind = _KINDS[step.uses]
    options = dict(step.options)
    for key in kind.paths:
        if key in options and not Path(str(options[key])).is_absolute():
            options[key] = str((base / str(options[key])).resolve())
    return replace(step, options=options)


def options_with_defaults(step: Any, spec: Any = None) -> dict[str, Any]:
    """The step's options with its kind's defaults filled in.

    Parameters
    ----------
    step
        A :class:`~mus_lab.production.StepSpec`.
    spec
        Its :class:`~mus_lab.production.ChainSpec`: the options are then also resolved in
        the chain (``StepKind.resolve``: fusion's confusion matrices...), as recorded.

    Returns
    -------
    dict
        Options.

    Raises
    ------
    ChainError
        ``spec`` given and an option that its kind's ``resolve`` refuses.
    """
    kind = _KINDS[step.uses]
    options = {**kind.optional, **step.options}
    if spec is not None and kind.resolve is not None:
        options = kind.resolve(options, step, spec)
    return options


from mus_lab.production import _chainsteps  # noqa: E402,F401  (registers ARD, fusion, flood)
