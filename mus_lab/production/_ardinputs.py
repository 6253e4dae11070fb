"""Land cover from a chain's own ARD files instead of the catalog.

A ``landcover.predict`` step that ``needs`` an ``ard.s2`` / ``ard.sar`` step reads the files
that step wrote on the tile (:func:`read_s2`, :func:`read_sar`) and builds its features with
:func:`mus_lab.recipes.features_from_ard`, the computation that
:func:`~mus_lab.recipes.features_from_catalog` runs after its search and ``prepare_*``
calls. Collections of the model's recipe that no needed ARD step serves are still searched
in the catalog. :func:`ard_plan` matches the needed ARD steps to the model's recipe before
anything runs; a step that cannot give the model's very features (bands, polarisations,
speckle filter, cloud filter, period) is a :class:`~mus_lab.errors.ChainError` naming the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from mus_lab.errors import ChainError, StepError

__all__: list[str] = []

_SAR_COLLECTIONS = {"s1": "sentinel-1-grd", "rcm": "rcm-grd"}
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{4})(?:_\d+)?$")
#: The polarisations :func:`mus_lab.classify.radar_features` uses.
RADAR_POLARISATIONS = ("vv", "vh")


def model_recipe(model: str | Path) -> dict[str, Any]:
    """The feature recipe a saved land-cover model records (its ``metadata.json``).

    Parameters
    ----------
    model
        The model's folder.

    Returns
    -------
    dict
        The recipe (empty when the model records none).

    Raises
    ------
    ChainError
        No model there.
    """
    meta = Path(model) / "metadata.json"
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChainError(
            f"No land-cover model at {model} ({exc}): give the folder that "
            "LandCoverModel.save (or mus-lab landcover train) wrote."
        ) from exc
    return dict(doc.get("recipe") or {})


def _sar_collection(options: Mapping[str, Any]) -> str:
    return str(options["collection"] or _SAR_COLLECTIONS.get(str(options["sensor"]), ""))


def ard_plan(
    step: Any, steps: Mapping[str, Any], *, period: str | None, where: str = ""
) -> dict[str, list[str]]:
    """Which needed ARD steps give which collection of a land-cover step's model.

    Parameters
    ----------
    step
        A ``landcover.predict`` :class:`~mus_lab.production.StepSpec` (model path resolved).
    steps
        Every step of the chain by name.
    period
        The chain's period (the ARD steps map it; the model's recipe must have the same).
    where
        Appended to messages (`` in <file>``).

    Returns
    -------
    dict
        ``{collection: [ARD step names]}``; a collection of the recipe not in it is read from
        the catalog. Empty when the step needs no ARD step.

    Raises
    ------
    ChainError
        A needed ARD step reads a collection the model does not use, lacks a band or a
        polarisation the model's features need, filters speckle or clouds otherwise than
        the model's recipe, or the chain's period is not the recipe's.
    """
    from mus_lab.classify import FeatureOptions
    from mus_lab.production._tilesteps import options_with_defaults
    from mus_lab.recipes import optical_bands_of

    ards = [steps[n] for n in step.needs if steps[n].uses in ("ard.s2", "ard.sar")]
    if not ards:
        return {}
    recipe = model_recipe(step.options["model"])
    if not recipe.get("sensors"):
        return {}  # the step itself says that the model records no recipe
    opts = FeatureOptions.from_dict(recipe)
    optical = opts.sensors in ("optical", "stacked")
    radar = opts.radar_sources if opts.sensors in ("radar", "stacked") else ()
    head = f"Step {step.name!r}{where} (landcover.predict, model {step.options['model']})"
    plan: dict[str, list[str]] = {}
    for ard in ards:
        o = options_with_defaults(ard)
        if ard.uses == "ard.s2":
            coll = str(o["collection"])
            if not optical or coll != opts.optical_source:
                raise ChainError(
                    f"{head} needs {ard.name!r} (ard.s2 of {coll}), but its model reads no "
                    f"{coll}: remove {ard.name!r} from its needs."
                )
            need = optical_bands_of(opts.optical_variables)
            missing = [b for b in need if b not in o["bands"]]
            if missing:
                raise ChainError(
                    f"{head} builds {list(opts.optical_variables)} from {ard.name!r}, whose "
                    f"bands lack {missing}: add them to {ard.name!r}'s bands."
                )
            if float(o["max_cloud"]) < 100:
                raise ChainError(
                    f"{head}: {ard.name!r} keeps the dates of at most {o['max_cloud']} % cloud, "
                    f"the model's features use every date: set max_cloud: 100 on {ard.name!r}."
                )
        else:
            coll = _sar_collection(o)
            if coll not in radar:
                raise ChainError(
                    f"{head} needs {ard.name!r} (ard.sar of {coll}), but its model reads no "
                    f"{coll}: remove {ard.name!r} from its needs."
                )
            if (o["speckle"] or None) != (opts.speckle or None):
                raise ChainError(
                    f"{head}: {ard.name!r} filters speckle with {o['speckle']!r}, the model's "
                    f"features with {opts.speckle!r}: set speckle: {opts.speckle} on {ard.name!r}."
                )
        plan.setdefault(coll, []).append(ard.name)
    for coll, names in plan.items():
        if coll not in radar:
            if len(names) > 1:
                raise ChainError(f"{head} needs several ard.s2 steps of {coll} {names}: keep one.")
            continue
        pols = [str(options_with_defaults(steps[n])["polarisation"]).lower() for n in names]
        if sorted(pols) != sorted(RADAR_POLARISATIONS):
            raise ChainError(
                f"{head} builds radar features from {list(RADAR_POLARISATIONS)} of {coll}; its "
                f"needed ARD steps {names} give {pols}: need one ard.sar step per polarisation."
            )
    wanted = recipe.get("datetime")
    if (wanted or None) != (period or None):
        raise ChainError(
            f"{head} reads the chain's ARD over period {period!r}, but its model's features "
            f"are dated from {wanted!r}: set the chain's period to {wanted!r} (or remove the "
            "ARD steps from its needs to rebuild its features from the catalog)."
        )
    return plan


def _quicklook_plan(
    step: Any, steps: Mapping[str, Any], *, where: str = ""
) -> dict[str, list[str]]:
    """:func:`reads_ard` for ``s2.ndvi_median`` (an ``ard.s2``) and ``sar.mean_db`` (``ard.sar``)."""
    from mus_lab.production._tilesteps import options_with_defaults

    kind = "ard.s2" if step.uses == "s2.ndvi_median" else "ard.sar"
    ards = [steps[n] for n in step.needs if steps[n].uses == kind]
    if not ards:
        return {}
    mine = options_with_defaults(step)
    head = f"Step {step.name!r}{where} ({step.uses})"
    if len(ards) > 1:
        raise ChainError(f"{head} needs several {kind} steps {[a.name for a in ards]}: keep one.")
    (ard,) = ards
    o = options_with_defaults(ard)
    coll = str(o["collection"]) if kind == "ard.s2" else _sar_collection(o)
    if coll != str(mine["collection"]):
        raise ChainError(
            f"{head} maps {mine['collection']}, but {ard.name!r} ({kind}) gives {coll}: set "
            f"collection: {coll} on {step.name!r}, or remove {ard.name!r} from its needs."
        )
    if kind == "ard.s2":
        missing = [b for b in ("red", "nir") if b not in o["bands"]]
        if missing:
            raise ChainError(f"{head}: {ard.name!r} lacks {missing}: add them to its bands.")
        if float(o["max_cloud"]) != float(mine["max_cloud"]):
            raise ChainError(
                f"{head} keeps the dates of at most {mine['max_cloud']} % cloud, {ard.name!r} of "
                f"at most {o['max_cloud']} %: set the same max_cloud on both."
            )
    else:
        if str(o["polarisation"]).lower() != str(mine["band"]).lower():
            raise ChainError(
                f"{head} averages {mine['band']}, {ard.name!r} gives {o['polarisation']}: set "
                f"band: {o['polarisation']} on {step.name!r}, or need an ard.sar step of "
                f"{mine['band']}."
            )
        if o["speckle"]:
            raise ChainError(
                f"{head} averages unfiltered backscatter, {ard.name!r} filters speckle with "
                f"{o['speckle']!r}: need an ard.sar step without a speckle filter."
            )
    return {coll: [ard.name]}


def reads_ard(
    step: Any, steps: Mapping[str, Any], *, period: str | None, where: str = ""
) -> dict[str, list[str]]:
    """Which needed ARD steps a step reads instead of the catalog, by collection.

    :func:`ard_plan` for ``landcover.predict``. ``s2.ndvi_median`` and ``sar.mean_db``
    read the ``ard.s2`` (``ard.sar``) step they need instead of searching and loading the
    catalog again: the same clear observations (calibrated backscatter) the chain's other
    products use. Other kinds read no ARD.

    Parameters
    ----------
    step
        The step (:class:`~mus_lab.production.StepSpec`).
    steps
        Every step of the chain by name.
    period
        The chain's period.
    where
        Where the step is written, for messages.

    Returns
    -------
    dict
        ``{collection: [ARD step names]}``, empty when it reads none.

    Raises
    ------
    ChainError
        A needed ARD step cannot give what the step computes from: for a quick look, it
        reads another collection, lacks red and nir (the polarisation), keeps other dates
        (``max_cloud``), filters speckle, or there are several.
    """
    if step.uses == "landcover.predict":
        return ard_plan(step, steps, period=period, where=where)
    if step.uses in ("s2.ndvi_median", "sar.mean_db"):
        return _quicklook_plan(step, steps, where=where)
    return {}


def _times(names: Sequence[str], path: Any) -> list[pd.Timestamp]:
    out = []
    for name in names:
        m = _DATE.match(name)
        if m is None:
            raise StepError(f"{path}: band {name!r} is not a date of an ARD file.")
        out.append(pd.Timestamp(pd.to_datetime(m.group(1), format="%Y-%m-%dT%H%M")))
    return out


def _open(path: str | Path) -> tuple[xr.DataArray, list[str], dict[str, str]]:
    import rasterio

    from mus_lab.publish import open_raster

    with rasterio.open(path) as src:
        names = [str(d) for d in src.descriptions]
        tags = dict(src.tags())
    da = open_raster(path, chunks=None)
    if "band" not in da.dims:
        da = da.expand_dims(band=[1])
    return da, names, tags


def read_s2(path: str | Path) -> xr.Dataset:
    """An ``ard.s2`` file as :func:`mus_lab.ard.prepare_s2` gives its reflectance.

    Parameters
    ----------
    path
        The file (int16 x 10,000, bands ``<date>_<band>``).

    Returns
    -------
    xarray.Dataset
        Float32 reflectance per band ``(time, y, x)`` (NaN where not clear) and ``valid``
        (every band present), lazy.

    Raises
    ------
    StepError
        A band name is not ``<date>_<band>``.
    """
    da, names, tags = _open(path)
    scale = float(tags.get("scale", "0.0001"))
    split = [n.rsplit("_", 1) for n in names]
    bands = list(dict.fromkeys(b for _, b in split))
    out = {}
    for band in bands:
        idx = [i for i, (_, b) in enumerate(split) if b == band]
        layer = da.isel(band=idx)
        # in float64, then to float32, as prepare_s2 computes dn * scale + offset: the same
        # float32 values (the int16 holds dn + offset / scale exactly)
        refl = (layer.where(layer != -32768).astype("float64") * scale).astype("float32")
        times = _times([split[i][0] for i in idx], path)
        out[band] = refl.rename(band="time").assign_coords(time=times)
    ds = xr.Dataset(out)
    ds["valid"] = xr.concat([ds[b].notnull() for b in bands], "b").all("b")
    ds.attrs = {"product": "s2_l2a_ard", "source": str(path)}
    return ds


def read_sar(paths: Sequence[str | Path]) -> xr.Dataset:
    """``ard.sar`` files of one sensor (one per polarisation) as ``prepare_s1(db=True)`` gives.

    Parameters
    ----------
    paths
        The files (float32 dB, one band per date, tag ``polarisation``).

    Returns
    -------
    xarray.Dataset
        Float32 dB per polarisation ``(time, y, x)`` and ``valid`` (every polarisation
        present), attribute ``db=1``, lazy.

    Raises
    ------
    StepError
        The files have different dates.
    """
    out = {}
    times: list[pd.Timestamp] | None = None
    for path in paths:
        da, names, tags = _open(path)
        these = _times(names, path)
        if times is not None and these != times:
            raise StepError(
                f"{path} has other dates than {paths[0]}: run the ard.sar steps of one sensor "
                "with the same collection and period."
            )
        times = these
        pol = tags.get("polarisation", Path(path).stem).lower()
        out[pol] = da.rename(band="time").assign_coords(time=these).astype("float32")
    ds = xr.Dataset(out)
    ds["valid"] = xr.concat([ds[p].notnull() for p in out], "p").all("p")
    ds.attrs = {"db": 1, "source": ",".join(str(p) for p in paths)}
    return ds


def features_of_task(task: Any, recipe: Mapping[str, Any]) -> xr.DataArray:
    """A land-cover task's features: its needs' ARD files, the catalog for the rest.

    What :func:`mus_lab.recipes.features_from_catalog` computes on the tile, with the
    ``prepare_*`` output of each collection in ``task.ard`` read from the ARD files instead.

    Parameters
    ----------
    task
        The :class:`~mus_lab.production.TileTask` (its ``ard`` and ``inputs`` filled).
    recipe
        The model's recipe.

    Returns
    -------
    xarray.DataArray
        The ``(feature, y, x)`` cube on the tile, lazy.

    Raises
    ------
    StepError
        No item of a collection read from the catalog covers the tile.
    """
    from mus_lab import ard, recipes
    from mus_lab.classify import FeatureOptions

    opts = FeatureOptions.from_dict(recipe)
    size = int(max(task.geobox.shape.yx))
    spatial = {"x": size, "y": size}

    def files(coll: str) -> list[str]:
        return [next(iter(task.inputs[n].values())) for n in task.ard[coll]]

    def found(coll: str, required: bool = True) -> Any:
        return recipes.find(
            task.catalog,
            coll,
            bbox=task.bbox_lonlat,
            datetime=recipe.get("datetime"),
            required=required,
        )

    s2 = None
    if opts.sensors in ("optical", "stacked"):
        coll = opts.optical_source
        if coll in task.ard:
            s2 = read_s2(files(coll)[0])
        else:
            s2 = ard.prepare_s2(found(coll), geobox=task.geobox, chunks={"time": -1, **spatial})
    sar: dict[str, xr.Dataset] = {}
    if opts.sensors in ("radar", "stacked"):
        for coll in opts.radar_sources:
            prefix = "rcm" if "rcm" in coll else "s1"
            if coll in task.ard:
                sar[prefix] = read_sar(files(coll))
                continue
            items = found(coll, required=False)
            if not items:
                continue
            if prefix == "rcm":
                sar[prefix] = ard.prepare_rcm(
                    items, geobox=task.geobox, speckle=opts.speckle, db=True
                )
            else:
                sar[prefix] = ard.prepare_s1(
                    items, geobox=task.geobox, speckle=opts.speckle, db=True, chunks=spatial
                )
    return recipes.features_from_ard(opts, s2=s2, sar=sar)
