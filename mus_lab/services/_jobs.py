"""The lab's processes, independent of the engine that serves them (pygeoapi, pywps).

Each process takes its inputs as plain JSON values (a STAC item as a URL or a JSON object,
a file as a ``file://`` URL), checks them (:func:`check_inputs`: no file outside the
allowed roots, no host outside the allowed ones), runs a stage of the lab, writes the
result through :mod:`mus_lab.publish` into the product store, stamps its provenance
(``processing:lineage``, ``mus_lab:job``, ``derived_from`` links to the inputs, a ``via``
link to the job) and, when a STAC API is configured, sends it there
(:class:`~mus_lab.publish.StacApiTarget`). See docs/design/0017-processes.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mus_lab.errors import ServiceError

__all__ = [
    "PROCESSES",
    "Job",
    "ProcessConfig",
    "ProcessInputError",
    "ProcessSpec",
    "check_inputs",
    "run_process",
]

GEOJSON = "application/geo+json"


class ProcessInputError(ServiceError):
    """An input of a process is missing, malformed or points where the server may not read."""


@dataclass(frozen=True)
class ProcessConfig:
    """What the processes may read and where they write.

    Attributes
    ----------
    store
        The product store (a static catalog folder): results are written there, and its
        files may be read as inputs.
    allowed_roots
        Other folders whose files may be read as inputs (``file://`` URLs).
    allowed_hosts
        Hosts that ``http(s)://`` inputs may name (default: loopback only).
    holdings
        The holdings folder the ``harvest`` process fills (default: ``store/../holdings``).
    stac_api
        A STAC API (transaction extension) that results are also sent to, or ``None``.
    stac_api_token_file
        The file holding that API's token (never the token itself: it stays out of every
        configuration file and log).
    dask
        Where the jobs' Dask graphs run: a ``tcp://`` scheduler or a Dask Gateway address
        (:func:`mus_lab.compute.get_client`, joined once when the server starts); ``None``
        computes in the server's process (Dask's threaded scheduler).

    Examples
    --------
    >>> cfg = ProcessConfig.from_dict({"store": "/data/products", "allowed_roots": ["/data/in"]})
    >>> [str(p) for p in cfg.roots()]
    ['/data/products', '/data/in']
    >>> ProcessConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    store: Path
    allowed_roots: tuple[Path, ...] = ()
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    holdings: Path | None = None
    stac_api: str | None = None
    stac_api_token_file: Path | None = field(default=None, repr=False)
    dask: str | None = None

    def roots(self) -> list[Path]:
        """The folders inputs may come from.

        Returns
        -------
        list of Path
            The store first, then the allowed roots.
        """
        return [self.store, *self.allowed_roots]

    def holdings_dir(self) -> Path:
        """Where ``harvest`` writes.

        Returns
        -------
        Path
            ``holdings``, or ``store/../holdings``.
        """
        return self.holdings or self.store.parent / "holdings"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (what the server passes to its subprocess).

        Returns
        -------
        dict
            Paths as strings; the token file's path, never the token.
        """
        return {
            "store": str(self.store),
            "allowed_roots": [str(p) for p in self.allowed_roots],
            "allowed_hosts": list(self.allowed_hosts),
            "holdings": str(self.holdings) if self.holdings else None,
            "stac_api": self.stac_api,
            "stac_api_token_file": str(self.stac_api_token_file)
            if self.stac_api_token_file
            else None,
            "dask": self.dask,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessConfig:
        """The inverse of :meth:`to_dict`.

        Parameters
        ----------
        data
            ``store`` (required), ``allowed_roots``, ``allowed_hosts``, ``holdings``,
            ``stac_api``, ``stac_api_token_file``.

        Returns
        -------
        ProcessConfig

        Raises
        ------
        ServiceError
            No ``store``.
        """
        if not data.get("store"):
            raise ServiceError("The processes need a product store: give store=FOLDER.")
        token_file = data.get("stac_api_token_file")
        return cls(
            store=Path(data["store"]),
            allowed_roots=tuple(Path(p) for p in data.get("allowed_roots") or ()),
            allowed_hosts=tuple(data.get("allowed_hosts") or ("127.0.0.1", "localhost")),
            holdings=Path(data["holdings"]) if data.get("holdings") else None,
            stac_api=data.get("stac_api") or None,
            stac_api_token_file=Path(token_file) if token_file else None,
            dask=data.get("dask") or None,
        )


@dataclass(frozen=True)
class Job:
    """Which job runs a process: recorded in the results' provenance.

    Attributes
    ----------
    id
        The engine's job id.
    engine
        ``"ogcapi-processes"`` (pygeoapi) or ``"wps"`` (pywps).
    status_url
        Where the job's status can be read (linked from the results as ``via``).
    """

    id: str
    engine: str
    status_url: str | None = None


# -- inputs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ref:
    """A resolved input: a STAC item (with where it came from) or a file."""

    item: Any = None  # pystac.Item
    href: str | None = None  # the item's URL, or the file's
    path: Path | None = None  # a local file or folder


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    real = path.resolve()
    return any(real.is_relative_to(root.resolve()) for root in roots)


def _check_url(url: str, cfg: ProcessConfig, what: str) -> tuple[str, Path | None]:
    """``(url, local path or None)`` after checking the scheme, the host and the folder."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ProcessInputError(f"{what}: file URLs name no host ({url!r}): use file:///PATH.")
        path = Path(unquote(parts.path))
        if not path.is_absolute() or not _inside(path, cfg.roots()):
            raise ProcessInputError(
                f"{what}: {url!r} is outside the product store and the allowed folders: "
                "give a file inside them (the server's `allowed_roots`), or publish it first."
            )
        if not path.exists():
            raise ProcessInputError(f"{what}: {url!r} does not exist.")
        return url, path
    if parts.scheme in ("http", "https"):
        if (parts.hostname or "") not in cfg.allowed_hosts:
            raise ProcessInputError(
                f"{what}: the host of {url!r} is not one this server reads from "
                f"({', '.join(cfg.allowed_hosts)}): give one of those, or a file:// URL."
            )
        return url, None
    raise ProcessInputError(
        f"{what}: {url!r} is no URL: give a STAC item (a JSON object or its http(s):// or "
        "file:// URL) or a file:// URL."
    )


def _read_json(url: str, path: Path | None, what: str) -> Any:
    if path is not None:
        try:
            return json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ProcessInputError(f"{what}: {url!r} is no JSON document ({exc}).") from None
    import requests

    try:
        answer = requests.get(url, timeout=15)
        answer.raise_for_status()
        return answer.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProcessInputError(
            f"{what}: {url!r} could not be read ({type(exc).__name__})."
        ) from None


def _item_from(data: Any, href: str | None, cfg: ProcessConfig, what: str) -> Any:
    import pystac

    if not (isinstance(data, dict) and data.get("type") == "Feature"):
        raise ProcessInputError(f"{what}: not a STAC item (a GeoJSON Feature with assets).")
    try:
        item = pystac.Item.from_dict(data, href=href, preserve_dict=False)
    except Exception as exc:  # pystac raises several kinds on malformed items
        raise ProcessInputError(f"{what}: not a valid STAC item ({exc}).") from None
    for key, asset in item.assets.items():
        absolute = asset.get_absolute_href() or asset.href
        if "://" not in absolute:
            if not Path(absolute).is_absolute():
                raise ProcessInputError(
                    f"{what}: asset {key!r} has a relative href and the item no URL: give the "
                    "item by its URL, or absolute asset hrefs."
                )
            absolute = Path(absolute).as_uri()
        _, local = _check_url(absolute, cfg, f"{what}, asset {key!r}")
        asset.href = str(local) if local is not None else absolute
    return item


def resolve(value: Any, cfg: ProcessConfig, what: str, *, files: bool = True) -> _Ref:
    """An input value as a STAC item or a file, checked against ``cfg``.

    Parameters
    ----------
    value
        A STAC item (dict or JSON text), its URL, or a ``file://`` URL of a file.
    cfg
        What may be read.
    what
        The input's name, for messages.
    files
        Whether a plain file (not a JSON item) is accepted.

    Returns
    -------
    _Ref

    Raises
    ------
    ProcessInputError
        Malformed, outside the allowed folders or hosts, or unreadable.
    """
    if isinstance(value, dict) and set(value) == {"href"}:  # OGC API's qualified input
        value = value["href"]
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            raise ProcessInputError(f"{what}: the text is no JSON object.") from None
    if isinstance(value, dict):
        return _Ref(item=_item_from(value, None, cfg, what))
    if not isinstance(value, str) or not value:
        raise ProcessInputError(f"{what}: give a STAC item (object or URL) or a file:// URL.")
    url, path = _check_url(value, cfg, what)
    if path is not None and (path.is_dir() or path.suffix.lower() not in (".json", ".geojson")):
        if not files:
            raise ProcessInputError(f"{what}: {url!r} is no STAC item (a .json file).")
        return _Ref(href=url, path=path)
    item = _item_from(_read_json(url, path, what), str(path) if path else url, cfg, what)
    return _Ref(item=item, href=url)


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


# -- the processes ---------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessSpec:
    """A process: its id, words for the descriptions, its inputs and its runner.

    Attributes
    ----------
    id, title, description
        As the engines publish them.
    inputs
        Input name -> (description, required, several allowed).
    run
        ``run(inputs, cfg, job, workdir) -> result``: the result is a JSON object
        (``collection``, ``items``: the published items).
    """

    id: str
    title: str
    description: str
    inputs: Mapping[str, tuple[str, bool, bool]]
    run: Callable[[Mapping[str, Any], ProcessConfig, Job, Path], dict[str, Any]] = field(repr=False)


def _collection_id(base: str, job: Job) -> str:
    return f"{base}-{job.id.replace('-', '')[:12]}"


def _file_path(url: str) -> str:
    parts = urlsplit(url)
    return unquote(parts.path) if parts.scheme == "file" else url


def _sar_file(ref: _Ref, workdir: Path) -> tuple[Path, Any]:
    """A VV/VH GeoTIFF of the SAR input and its date (the item's, else now)."""
    if ref.item is None:
        assert ref.path is not None
        return ref.path, datetime.now(UTC)
    import rasterio

    item = ref.item
    keys = [k for k in item.assets if k.lower() in ("vv", "vh")]
    if not keys:
        raise ProcessInputError(
            f"sar: item {item.id!r} has no 'vv' or 'vh' asset: give a Sentinel-1 or RCM item "
            "(or a GeoTIFF with bands described VV/VH)."
        )
    out = workdir / "sar.tif"
    profile: dict[str, Any] = {}
    bands = []
    for key in keys:
        with rasterio.open(_file_path(item.assets[key].href)) as src:
            bands.append(src.read(1).astype("float32"))
            if not profile:
                profile = {
                    "driver": "GTiff",
                    "width": src.width,
                    "height": src.height,
                    "crs": src.crs,
                    "transform": src.transform,
                    "dtype": "float32",
                    "nodata": float("nan"),
                }
    with rasterio.open(out, "w", count=len(bands), **profile) as dst:
        for i, (key, band) in enumerate(zip(keys, bands, strict=True), start=1):
            dst.write(band, i)
            dst.set_band_description(i, key.upper())
    return out, item.datetime or datetime.now(UTC)


def _run_flood(
    inputs: Mapping[str, Any], cfg: ProcessConfig, job: Job, workdir: Path
) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    import xarray as xr

    from mus_lab import flood, publish
    from mus_lab.errors import LinearBackscatterWarning

    sar = resolve(inputs.get("sar"), cfg, "sar")
    reference = resolve(inputs["reference"], cfg, "reference") if inputs.get("reference") else None
    sar_tif, when = _sar_file(sar, workdir)
    ref_tif = None
    if reference is not None:
        refdir = workdir / "reference"
        refdir.mkdir()
        ref_tif = _sar_file(reference, refdir)[0]
    out = workdir / "water.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinearBackscatterWarning)  # converted, as documented
        flood.map_geotiff(sar_tif, out, reference=ref_tif)
    maps = publish.open_raster(out).load()
    water = maps.isel(band=0, drop=True).astype(np.uint8)
    likelihood = maps.isel(band=1, drop=True).astype(np.uint8)
    stamp = pd.Timestamp(when).tz_localize(None) if pd.Timestamp(when).tz else pd.Timestamp(when)
    ds = xr.Dataset({"water": water, "flood": water, "likelihood": likelihood})
    ds = ds.drop_vars([c for c in ds.coords if c not in ("x", "y", "spatial_ref")])
    ds = ds.expand_dims(time=[stamp.to_datetime64()])
    sources = [r.href or r.item for r in (sar, reference) if r is not None]
    product = publish.FloodExtentProduct(
        ds,
        collection=_collection_id("flood-extent", job),
        sources=tuple(s for s in sources if s is not None),
        parameters={"process": "flood-map", "reference": bool(reference)},
    )
    return _publish_product(product, cfg, job, "flood-map", [sar, reference])


def _run_classify(
    inputs: Mapping[str, Any], cfg: ProcessConfig, job: Job, workdir: Path
) -> dict[str, Any]:
    from mus_lab import classify, recipes

    model = resolve(inputs.get("model"), cfg, "model")
    if model.path is None or not (model.path / "metadata.json").is_file():
        raise ProcessInputError(
            "model: give the file:// URL of a saved model folder (with metadata.json), "
            "inside the product store or the allowed folders."
        )
    catalog = None
    if inputs.get("catalog"):
        cat = resolve(inputs["catalog"], cfg, "catalog")
        catalog = str(cat.path) if cat.path is not None else cat.href
    lcm = classify.load_model(model.path)
    recipe = dict(lcm.metadata.recipe)
    feats, _, items = recipes.replay_features(recipe, catalog=catalog)
    result = classify.predict(feats, lcm)
    cid = _collection_id(
        classify.LANDCOVER_COLLECTIONS.get(str(recipe.get("sensors")), "landcover"), job
    )
    written = classify.write_landcover(result, _store(cfg).path, cid, model=lcm, sources=items)
    return _finish(written, cfg, job, "landcover-predict", [model])


def _run_fusion(
    inputs: Mapping[str, Any], cfg: ProcessConfig, job: Job, workdir: Path
) -> dict[str, Any]:
    from mus_lab import fusion, publish

    refs = [
        resolve(v, cfg, f"maps[{i}]", files=False) for i, v in enumerate(_list(inputs.get("maps")))
    ]
    if len(refs) < 2:
        raise ProcessInputError("maps: fusion needs two or more land-cover STAC items.")
    products = []
    for ref in refs:
        item = ref.item
        if "classification" not in item.assets or not item.collection_id:
            raise ProcessInputError(
                f"maps: item {item.id!r} is no land-cover product (a 'classification' asset "
                "in a landcover-* collection): give the items of land-cover products."
            )
        products.append(publish.LandCoverProduct.from_catalog([item], item.collection_id))
    # Per-class reliability from the products' confusion matrices; a product without one
    # (made outside the land-cover stage) makes every source fully reliable.
    reliable = all(p.confusion is not None for p in products)
    options = fusion.FusionOptions(
        rule=str(inputs.get("rule") or "dempster"),  # type: ignore[arg-type]
        reliability="precision" if reliable else None,
    )
    ds = fusion.fuse(products, options=options)
    written = fusion.write_fused(
        ds,
        _store(cfg).path,
        collection=_collection_id("landcover-fused", job),
        sources=[r.href or r.item for r in refs],
        parameters={"process": "fusion", "reliability": "precision" if reliable else "none"},
    )
    return _finish(written, cfg, job, "fusion", refs)


def _run_harvest(
    inputs: Mapping[str, Any], cfg: ProcessConfig, job: Job, workdir: Path
) -> dict[str, Any]:
    from mus_lab import catalog

    refs = [
        resolve(v, cfg, f"items[{i}]", files=False)
        for i, v in enumerate(_list(inputs.get("items")))
    ]
    if not refs:
        raise ProcessInputError("items: give one or more STAC items (objects or URLs) to harvest.")
    items = []
    for ref in refs:
        if not ref.item.collection_id:
            raise ProcessInputError(f"items: item {ref.item.id!r} names no collection.")
        items.append(ref.item)
    report = catalog.harvest(
        items, cfg.holdings_dir(), assets=inputs.get("assets") or None, workers=2, progress=False
    )
    return {
        "holdings": str(report.dest),
        "items": [i.to_dict(transform_hrefs=False) for i in report.items],
        "files": report.files,
        "failures": [str(f) for f in report.failures],
        "processing:lineage": _lineage("harvest", job, refs),
    }


PROCESSES: dict[str, ProcessSpec] = {
    spec.id: spec
    for spec in (
        ProcessSpec(
            "flood-map",
            "Flood map from one SAR scene",
            "Open water and flood extent (water, flood, likelihood) of a Sentinel-1 or RCM "
            "scene by the consensus of SAR methods (mus_lab.flood.map_geotiff), published as "
            "a flood-extent STAC item.",
            {
                "sar": (
                    "The SAR scene: a STAC item with vv/vh assets (JSON or URL) or the "
                    "file:// URL of a GeoTIFF with bands described VV/VH.",
                    True,
                    False,
                ),
                "reference": (
                    "Optional pre-event scene (same forms), for change detection.",
                    False,
                    False,
                ),
            },
            _run_flood,
        ),
        ProcessSpec(
            "landcover-predict",
            "Land-cover map with a trained model",
            "Rebuild the features a saved model records (mus_lab.recipes.replay_features) "
            "from a catalog and map them (mus_lab.classify.predict), published as a "
            "land-cover STAC item.",
            {
                "model": (
                    "file:// URL of a saved model folder (mus_lab.classify.save).",
                    True,
                    False,
                ),
                "catalog": (
                    "Optional catalog to map (file:// URL of a catalog folder or "
                    "catalog.json, or a STAC API URL); default: the model's.",
                    False,
                    False,
                ),
            },
            _run_classify,
        ),
        ProcessSpec(
            "fusion",
            "Fusion of land-cover maps",
            "Dempster-Shafer fusion of two or more land-cover products (mus_lab.fusion.fuse), "
            "published as a landcover-fused STAC item.",
            {
                "maps": ("Land-cover STAC items (JSON or URLs), two or more.", True, True),
                "rule": ("Combination rule (dempster, yager, pcr6...).", False, False),
            },
            _run_fusion,
        ),
        ProcessSpec(
            "harvest",
            "Harvest STAC items into the holdings",
            "Download the assets of STAC items into the lab's holdings and ingest them "
            "(mus_lab.catalog.harvest).",
            {
                "items": ("STAC items (JSON or URLs) to harvest.", True, True),
                "assets": ("Optional asset keys, e.g. 'vv,vh'.", False, False),
            },
            _run_harvest,
        ),
    )
}


def check_inputs(process_id: str, inputs: Any, cfg: ProcessConfig) -> None:
    """Check a request's inputs before a job is queued (the engines answer 400 on failure).

    Parameters
    ----------
    process_id
        One of :data:`PROCESSES`.
    inputs
        The ``inputs`` object of the request.
    cfg
        What may be read.

    Raises
    ------
    ProcessInputError
        An unknown input, a missing required one, or a reference outside what ``cfg``
        allows (:func:`resolve`).

    Examples
    --------
    >>> cfg = ProcessConfig(Path("/data/products"))
    >>> check_inputs("flood-map", {"sar": "file:///etc/passwd"}, cfg)
    Traceback (most recent call last):
    ...
    mus_lab.services._jobs.ProcessInputError: sar: 'file:///etc/passwd' is outside the product store and the allowed folders: give a file inside them (the server's `allowed_roots`), or publish it first.
    """
    spec = PROCESSES.get(process_id)
    if spec is None:
        raise ProcessInputError(f"No process {process_id!r}: choose one of {sorted(PROCESSES)}.")
    if not isinstance(inputs, dict):
        raise ProcessInputError("inputs: give a JSON object of input name -> value.")
    unknown = sorted(set(inputs) - set(spec.inputs))
    if unknown:
        raise ProcessInputError(
            f"{process_id}: unknown inputs {unknown}; it takes {sorted(spec.inputs)}."
        )
    for name, (_, required, several) in spec.inputs.items():
        value = inputs.get(name)
        if value in (None, "", []):
            if required:
                raise ProcessInputError(f"{process_id}: the input {name!r} is required.")
            continue
        if name in ("rule", "assets"):
            if not isinstance(value, str):
                raise ProcessInputError(f"{name}: give a string.")
            continue
        for i, one in enumerate(_list(value) if several else [value]):
            label = f"{name}[{i}]" if several else name
            resolve(one, cfg, label, files=not several)


def run_process(
    process_id: str, inputs: Mapping[str, Any], cfg: ProcessConfig, job: Job
) -> dict[str, Any]:
    """Run a process in a temporary work folder and return its result document.

    Parameters
    ----------
    process_id
        One of :data:`PROCESSES`.
    inputs
        Input name -> value.
    cfg
        What may be read, where results go.
    job
        The job (recorded in the results' provenance).

    Returns
    -------
    dict
        ``collection``, ``items`` (the published STAC items, as JSON), ``stac_api``
        (whether they went to the API too).

    Raises
    ------
    ProcessInputError
        Bad inputs (:func:`check_inputs`).
    MusLabError
        What the stage raised.
    """
    check_inputs(process_id, dict(inputs), cfg)
    cfg.store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"job-{job.id[:12]}-", dir=cfg.store.parent) as tmp:
        return PROCESSES[process_id].run(inputs, cfg, job, Path(tmp))


# -- publishing with provenance ----------------------------------------------------------
def _store(cfg: ProcessConfig) -> Any:
    from mus_lab import publish

    return publish.StaticCatalog.create(cfg.store)


def _lineage(process_id: str, job: Job, refs: Sequence[_Ref | None]) -> str:
    names = [
        (r.item.id if r.item is not None else Path(r.path or "").name)
        for r in refs
        if r is not None
    ]
    spec = PROCESSES[process_id]
    return (
        f"{spec.title} ({process_id}) by {job.engine} job {job.id} of the mus_lab process "
        f"server, from {', '.join(names) or 'no input'}"
    )


def _publish_product(
    product: Any, cfg: ProcessConfig, job: Job, process_id: str, refs: Sequence[_Ref | None]
) -> dict[str, Any]:
    written = product.write(_store(cfg).path)
    return _finish(written, cfg, job, process_id, refs)


def _finish(
    written: Any,
    cfg: ProcessConfig,
    job: Job,
    process_id: str,
    refs: Sequence[_Ref | None],
    *,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Stamp the provenance into the written items, push them to the API, describe them."""
    import pystac

    lineage = _lineage(process_id, job, refs)
    inputs = [r.href for r in refs if r is not None and r.href] + [e for e in extra if e]
    for item in written.get_items(recursive=True):
        href = item.get_self_href()
        if not href:
            continue
        path = Path(href)
        data = json.loads(path.read_text("utf-8"))
        props = data.setdefault("properties", {})
        props["processing:lineage"] = lineage
        props["mus_lab:job"] = {"id": job.id, "engine": job.engine, "process": process_id}
        links = data.setdefault("links", [])
        have = {ln.get("href") for ln in links if ln.get("rel") == "derived_from"}
        for url in inputs:
            if url not in have:
                links.append({"rel": "derived_from", "href": url, "type": GEOJSON})
        if job.status_url:
            links.append(
                {"rel": "via", "href": job.status_url, "type": "application/json", "title": "job"}
            )
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1), "utf-8")
        os.replace(tmp, path)
    collection = pystac.Collection.from_file(written.get_self_href())
    pushed = False
    if cfg.stac_api:
        from mus_lab import publish

        token = None
        if cfg.stac_api_token_file is not None:
            with contextlib.suppress(OSError):
                token = cfg.stac_api_token_file.read_text("utf-8").strip() or None
        publish.StacApiTarget(cfg.stac_api, _store(cfg), token=token).push(collection)
        pushed = True
    items = []
    for item in collection.get_items(recursive=True):
        item.make_asset_hrefs_absolute()
        data = item.to_dict(include_self_link=False, transform_hrefs=False)
        folder = Path(item.get_self_href() or ".").parent
        links = []
        for ln in data["links"]:  # the store's relative links made file:// URLs
            href = str(ln.get("href", ""))
            if ln.get("rel") in ("self", "root", "parent", "collection"):
                continue
            if "://" not in href:
                href = (folder / href).resolve().as_uri()
            links.append({**ln, "href": href})
        data["links"] = links
        data["links"].append(
            {"rel": "self", "href": Path(item.get_self_href() or "").as_uri(), "type": GEOJSON}
        )
        items.append(data)
    return {
        "collection": collection.id,
        "items": items,
        "stac_api": pushed,
        "processing:lineage": lineage,
    }
