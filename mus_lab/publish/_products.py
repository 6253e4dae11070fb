"""Typed products: ARD, land cover, fused map, flood extent, flood risk.

Each product is a small frozen object holding lazy xarray data and what the product's STAC item
records, with symmetric ``write(catalog)`` / ``from_catalog(catalog)`` and in-memory
constructors, so that stages pass products to each other without a round trip through disk
(fusion takes a :class:`LandCoverProduct` made by classify in memory, or read from a catalog,
alike). What each product holds is its contract in :mod:`mus_lab.contracts`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import pystac
import xarray as xr

from mus_lab._io import write_json
from mus_lab._settings import resolve_chunks
from mus_lab.contracts import (
    AGREEMENT_CODES,
    ARD_CONTRACTS,
    FLOOD_EXTENT,
    FLOOD_RISK,
    FUSED,
    LANDCOVER,
    NODATA_CLASS,
    RISK_CLASS_NAMES,
    UNDECIDED,
    ProductContract,
)
from mus_lab.errors import ProductContractError, PublishError
from mus_lab.publish._confusion import ConfusionMatrix
from mus_lab.publish._legend import stac_classes
from mus_lab.publish._lock import collection_lock
from mus_lab.publish._read import check_item, latest_item, open_asset
from mus_lab.publish._writer import Attachment, catalog_json, write_collection

__all__ = [
    "ArdProduct",
    "FloodExtentProduct",
    "FloodRiskProduct",
    "FusedProduct",
    "LandCoverProduct",
    "Product",
    "find_items",
]


def find_items(
    catalog: Any,
    collection: str,
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    how: str = "",
) -> list[pystac.Item]:
    """Items of a product collection in a catalog (path, STAC API URL or search result).

    Parameters
    ----------
    catalog
        Local catalog folder or ``catalog.json``, STAC API URL, or a
        :class:`~mus_lab.catalog.SearchResult` / sequence of items already found.
    collection
        Collection id.
    bbox, datetime
        Optional search filters.
    how
        How to make the product, appended to the error message.

    Returns
    -------
    list of pystac.Item

    Raises
    ------
    PublishError
        The collection is absent or empty in that catalog.
    """
    from mus_lab import catalog as cat
    from mus_lab.errors import MusLabError

    if not isinstance(catalog, str | os.PathLike):
        items = [it for it in getattr(catalog, "items", catalog) if it.collection_id == collection]
        if not items:
            raise PublishError(f"No {collection!r} item in the given items. {how}".strip())
        return items
    try:
        return list(
            cat.search(os.fspath(catalog), collections=collection, bbox=bbox, datetime=datetime)
        )
    except MusLabError as exc:
        raise PublishError(
            f"No product {collection!r} in {os.fspath(catalog)} for this area and period "
            f"({type(exc).__name__}: {exc}). {how}".strip()
        ) from exc


def _crop(da: xr.DataArray, bbox: Sequence[float] | None) -> xr.DataArray:
    if bbox is None:
        return da
    from odc.geo.geom import box

    gbox = da.odc.geobox
    west, south, east, north = (float(v) for v in bbox)
    area = box(west, south, east, north, crs="EPSG:4326").to_crs(gbox.crs)
    left, bottom, right, top = area.boundingbox
    corners = [~gbox.affine * xy for xy in ((left, top), (right, bottom))]
    cols = sorted(c for c, _ in corners)
    rows = sorted(r for _, r in corners)
    ny, nx = gbox.shape
    out = da.isel(  # every pixel the area touches, as odc-stac loads a bbox
        y=slice(max(int(np.floor(rows[0])), 0), min(int(np.ceil(rows[1])), ny)),
        x=slice(max(int(np.floor(cols[0])), 0), min(int(np.ceil(cols[1])), nx)),
    )
    if out.sizes["y"] == 0 or out.sizes["x"] == 0:
        raise PublishError(
            f"The area {list(bbox)} does not overlap the product {da.name!r}: give a bbox inside "
            "the mapped area, or None."
        )
    return out


def _legend_of(asset: pystac.Asset) -> dict[int, str]:
    classes = asset.extra_fields.get("classification:classes", [])
    return {
        int(c["value"]): str(c.get("title") or c.get("description") or c.get("name"))
        for c in classes
        if not c.get("nodata") and int(c["value"]) not in (NODATA_CLASS, UNDECIDED)
    }


@dataclass(frozen=True)
class Product:
    """What every product has: lazy data on one grid, where it came from, where it is.

    Attributes
    ----------
    data
        The product's variables (lazy, on one odc-geo grid).
    collection
        Collection id to write to / read from.
    sources
        Source STAC items or hrefs (``derived_from`` links).
    parameters
        Processing parameters recorded with the product.
    item
        The STAC item it was read from (None for a product made in memory).
    """

    contract: ClassVar[ProductContract]

    data: xr.Dataset = field(repr=False)
    collection: str = ""
    sources: tuple[Any, ...] = field(default=(), repr=False)
    parameters: Mapping[str, Any] = field(default_factory=dict, repr=False)
    item: pystac.Item | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.collection:
            object.__setattr__(self, "collection", self.contract.collection)

    # --- hooks of the subclasses -------------------------------------------------------------
    def _properties(self) -> dict[str, Any]:
        return {}

    def _asset_fields(self) -> dict[str, dict[str, Any]]:
        return {}

    def _files(self, folder: Path) -> dict[str, Attachment]:
        return {}

    def _description(self) -> str:
        return f"{self.contract.kind} product written by mus_lab"

    # --- writing -------------------------------------------------------------------------------
    def write(
        self,
        catalog: str | os.PathLike[str],
        *,
        collection: str | None = None,
        overwrite: bool = False,
    ) -> pystac.Collection:
        """Write the product into a local catalog (COGs + STAC items), atomically.

        Parameters
        ----------
        catalog
            Local catalog folder or ``catalog.json``.
        collection
            Collection id (default: the product's).
        overwrite
            Replace an existing collection of that id.

        Returns
        -------
        pystac.Collection
            The written collection.

        Raises
        ------
        PublishError
            No catalog there, or the collection exists and ``overwrite`` is False.
        ProductContractError
            The data do not match the product's contract.
        """
        coll = collection or self.collection
        root_dir = catalog_json(catalog).parent
        with (
            collection_lock(root_dir, coll),
            tempfile.TemporaryDirectory(
                prefix=f".{coll}.arrays-{os.getpid()}-", dir=root_dir
            ) as tmp,
        ):
            return write_collection(
                self._ready(Path(tmp)),
                catalog,
                coll,
                contract=self.contract,
                sources=self.sources,
                parameters=dict(self.parameters),
                description=self._description(),
                overwrite=overwrite,
                properties=self._properties(),
                asset_fields=self._asset_fields(),
                files=self._files(Path(tmp)),
                locked=True,
            )

    def _ready(self, folder: Path) -> xr.Dataset:
        return self.data

    def to_folder(self, folder: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Export the product as a self-contained folder (its own ``catalog.json``, COGs, items).

        Parameters
        ----------
        folder
            Folder to create.
        overwrite
            Replace an existing folder.

        Returns
        -------
        pathlib.Path
            The folder's ``catalog.json``.

        Raises
        ------
        PublishError
            The folder exists and ``overwrite`` is False.
        """
        from mus_lab._io import atomic_folder

        dest = Path(folder)
        if dest.exists() and not overwrite:
            raise PublishError(f"{dest} exists: pass overwrite=True or choose another folder.")
        with atomic_folder(dest) as tmp:
            root = pystac.Catalog(
                "mus_lab-export", f"{self.contract.kind} product exported by mus_lab"
            )
            root.set_self_href(str(tmp / "catalog.json"))
            root.save(pystac.CatalogType.SELF_CONTAINED)
            self.write(tmp)
        return dest / "catalog.json"

    # --- reading -----------------------------------------------------------------------------
    @classmethod
    def from_catalog(
        cls,
        catalog: Any,
        collection: str | None = None,
        *,
        bbox: Sequence[float] | None = None,
        datetime: str | None = None,
        chunks: int | None = None,
        **kwargs: Any,
    ) -> Self:
        """Read the product back from a catalog, lazily, after checking it against its contract.

        Parameters
        ----------
        catalog
            Local catalog (folder or ``catalog.json``), STAC API URL, or items already found.
        collection
            Collection id (default: the product kind's).
        bbox
            Area ``[west, south, east, north]`` in degrees: the search and the rasters are
            cropped to it.
        datetime
            Period searched.
        chunks
            Spatial chunk size (default: the setting ``chunk_size``).
        **kwargs
            What the kind needs besides: ``sensor=`` for :class:`ArdProduct`, ``name=`` (the
            source name) for :class:`LandCoverProduct`.

        Returns
        -------
        Product
            Of the class it is called on.

        Raises
        ------
        PublishError
            The collection is absent, or the area misses it.
        ProductContractError
            An item does not match the contract (the message names the collection, the item
            and the field).

        Examples
        --------
        >>> LandCoverProduct.from_catalog(tiny.catalog_path, "landcover-nowhere")
        Traceback (most recent call last):
        ...
        mus_lab.errors.PublishError: No product 'landcover-nowhere' in ...
        """
        from mus_lab import cube

        contract = cls._contract_for(**kwargs)
        coll = collection or cls._collection_for(contract, **kwargs)
        items = find_items(catalog, coll, bbox=bbox, datetime=datetime, how=cls._how())
        for it in items:
            check_item(it, contract)
        if contract.per_date:
            names = None if contract.open_variables else contract.names
            size = resolve_chunks(chunks)
            data = cube.load(items, names, chunks={"time": 1, "x": size, "y": size})
            return cls._build(items, data, coll, kwargs)
        item = latest_item(items)
        data = xr.Dataset(
            {
                v.name: _crop(open_asset(item, v.name, chunks=chunks, bands=v.bands), bbox)
                for v in contract.variables
                if v.name in item.assets
            }
        )
        return cls._build([item], data, coll, kwargs)

    @classmethod
    def _contract_for(cls, **kwargs: Any) -> ProductContract:
        return cls.contract

    @classmethod
    def _collection_for(cls, contract: ProductContract, **kwargs: Any) -> str:
        return contract.collection

    @classmethod
    def _build(
        cls, items: list[pystac.Item], data: xr.Dataset, collection: str, options: dict[str, Any]
    ) -> Self:
        """The product from its checked items and opened data (each kind reads its metadata)."""
        return cls(
            data,
            collection=collection,
            sources=tuple(items),
            item=items[-1],
            **cls._fields(items[-1], data, options),
        )

    @classmethod
    def _fields(
        cls, item: pystac.Item, data: xr.Dataset, options: dict[str, Any]
    ) -> dict[str, Any]:
        """What the kind reads from its item besides the data (its own dataclass fields)."""
        return {}

    @classmethod
    def _how(cls) -> str:
        return f"Write it first (mus_lab.publish.{cls.__name__}(...).write(catalog))."


# --- ARD ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArdProduct(Product):
    """Analysis-ready data of one sensor: measurements + ``valid`` + ``quality`` per date.

    Attributes
    ----------
    sensor
        ``"s2"``, ``"s1"`` or ``"rcm"`` (selects the contract).

    Examples
    --------
    >>> ArdProduct(xr.Dataset(), sensor="s1").collection
    's1-grd-ard'
    """

    sensor: str = "s2"

    @property
    def contract(self) -> ProductContract:  # type: ignore[override]
        """The ARD contract of the product's sensor."""
        try:
            return ARD_CONTRACTS[self.sensor]
        except KeyError:
            raise ProductContractError(
                f"sensor={self.sensor!r}: choose among {sorted(ARD_CONTRACTS)}."
            ) from None

    def _description(self) -> str:
        return f"Analysis-ready {self.sensor.upper()} data written by mus_lab"

    @classmethod
    def _contract_for(cls, **kwargs: Any) -> ProductContract:
        sensor = kwargs.get("sensor", "s2")
        if sensor not in ARD_CONTRACTS:
            raise ProductContractError(f"sensor={sensor!r}: choose among {sorted(ARD_CONTRACTS)}.")
        return ARD_CONTRACTS[sensor]

    @classmethod
    def _fields(
        cls, item: pystac.Item, data: xr.Dataset, options: dict[str, Any]
    ) -> dict[str, Any]:
        if "valid" in data:
            data["valid"] = data["valid"].astype(bool)
        return {"sensor": options.get("sensor", "s2")}


# --- land cover ---------------------------------------------------------------------------------
class _Metadata(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def classes(self) -> tuple[int, ...]: ...
    @property
    def class_names(self) -> Mapping[int, str]: ...
    @property
    def params(self) -> Mapping[str, Any]: ...
    @property
    def report(self) -> Mapping[str, Any]: ...
    def to_json(self) -> dict[str, Any]: ...


class _Model(Protocol):
    @property
    def metadata(self) -> _Metadata: ...


class _Accuracy(Protocol):
    @property
    def confusion(self) -> ConfusionMatrix: ...
    def to_dict(self) -> dict[str, Any]: ...


_LC_VARS = ("classification", "confidence", "margin", "probability")
#: Written too when the prediction has them (products made before entropy existed lack it).
_LC_OPTIONAL = ("entropy",)


@dataclass(frozen=True)
class LandCoverProduct(Product):
    """A land-cover map with its confidence indices, model and validation, ready to fuse.

    Attributes
    ----------
    name
        Source name (``"optical"``, ``"radar"``, ``"stacked"``...).
    legend
        Class code -> class name.
    confusion
        Validation confusion matrix (IOTA² layout), or None.
    model
        The model's metadata as written in ``model.json`` (kind, classes, features, recipe...).
    accuracy
        The accuracy report as a mapping (``accuracy.json``), or None.
    train_polygons, validation_polygons
        Ids of the reference polygons that trained / validated the classifier.
    colors
        Hex colour per class code (default: from the class names).

    Examples
    --------
    >>> from odc.geo.geobox import GeoBox
    >>> from odc.geo.xr import xr_zeros
    >>> gbox = GeoBox.from_bbox((0, 0, 40, 40), "EPSG:32631", resolution=10)
    >>> lc = LandCoverProduct.from_maps(xr_zeros(gbox, dtype="uint8") + 1, legend={1: "crops"})
    >>> lc.classification.dtype, lc.collection
    (dtype('uint8'), 'landcover-optical')
    """

    contract: ClassVar[ProductContract] = LANDCOVER

    name: str = "optical"
    legend: Mapping[int, str] = field(default_factory=dict)
    confusion: ConfusionMatrix | None = field(default=None, repr=False)
    model: Mapping[str, Any] = field(default_factory=dict, repr=False)
    accuracy: Mapping[str, Any] | None = field(default=None, repr=False)
    train_polygons: tuple[Any, ...] = field(default=(), repr=False)
    validation_polygons: tuple[Any, ...] = field(default=(), repr=False)
    colors: Mapping[int, str] | None = field(default=None, repr=False)

    @property
    def classification(self) -> xr.DataArray:
        """Class codes ``(y, x)``, uint8, 0 = no data (lazy)."""
        return self.data["classification"]

    @property
    def probability(self) -> xr.DataArray | None:
        """Class probabilities ``("class", "y", "x")``, float32, NaN = no data, or None."""
        return self.data["probability"] if "probability" in self.data else None

    @property
    def confidence(self) -> xr.DataArray | None:
        """Confidence of the winning class (0-100, 255 = no data), or None."""
        return self.data["confidence"] if "confidence" in self.data else None

    @property
    def entropy(self) -> xr.DataArray | None:
        """Normalised Shannon entropy of the class probabilities (0-100, 255 = no data), or None."""
        return self.data["entropy"] if "entropy" in self.data else None

    # --- constructors --------------------------------------------------------------------------
    @classmethod
    def from_maps(
        cls,
        classification: xr.DataArray,
        probability: xr.DataArray | None = None,
        *,
        legend: Mapping[int, str],
        confusion: ConfusionMatrix | None = None,
        name: str = "optical",
        collection: str | None = None,
    ) -> LandCoverProduct:
        """A land-cover product from a class map (and probabilities) made elsewhere.

        Parameters
        ----------
        classification
            Class codes ``(y, x)`` (0 = no data).
        probability
            Class probabilities ``("class", "y", "x")``, or None.
        legend
            Class code -> name.
        confusion
            Validation confusion matrix, if known (fusion needs it to weigh the source).
        name
            Source name.
        collection
            Collection id (default ``landcover-<name>`` when standard, else the contract's).

        Returns
        -------
        LandCoverProduct
            With no model, accuracy or training polygons: fusion needs only the maps and the
            confusion matrix.

        Raises
        ------
        ProductContractError
            The class map has extra dimensions.
        """
        if set(classification.dims) != {"y", "x"}:
            raise ProductContractError(
                f"A class map has dims ('y', 'x'), got {classification.dims}: select one date "
                "or band first."
            )
        data = {"classification": classification.astype("uint8")}
        if probability is not None:
            data["probability"] = probability.astype("float32")
        return cls(
            xr.Dataset(data),
            collection=collection or _collection_for(name),
            name=name,
            legend=dict(legend),
            confusion=confusion,
        )

    @classmethod
    def from_prediction(
        cls,
        result: xr.Dataset,
        *,
        model: _Model,
        accuracy: _Accuracy | None = None,
        name: str = "optical",
        collection: str | None = None,
        sources: Iterable[Any] = (),
        colors: Mapping[int, str] | None = None,
    ) -> LandCoverProduct:
        """The product of a prediction, its model and (optionally) its accuracy report.

        Parameters
        ----------
        result
            What :func:`mus_lab.classify.predict` returned (``classification``,
            ``confidence``, ``margin``, ``probability`` and, when present, ``entropy``).
        model
            The :class:`~mus_lab.classify.LandCoverModel` that made it.
        accuracy
            Its :class:`~mus_lab.classify.AccuracyReport` on held-out polygons; its confusion
            matrix becomes the product's.
        name
            Source name (``"optical"``, ``"radar"``, ``"stacked"``).
        collection
            Collection id (default ``landcover-<name>``).
        sources
            Source STAC items (``derived_from``).
        colors
            Hex colour per class code.

        Returns
        -------
        LandCoverProduct
            In memory and lazy; ``write(catalog)`` publishes it, ``fusion.fuse`` takes it.

        Raises
        ------
        ProductContractError
            ``result`` lacks one of the four outputs of ``predict``.
        """
        missing = [v for v in _LC_VARS if v not in result]
        if missing:
            raise ProductContractError(
                f"A land-cover product needs predict()'s outputs; missing {missing}."
            )
        meta = model.metadata
        report = dict(meta.report)
        names = {int(c): meta.class_names.get(int(c), str(c)) for c in meta.classes}
        params = {
            **{k: v for k, v in meta.params.items() if isinstance(v, str | int | float | bool)},
            "model_kind": meta.kind,
            "min_pixels": int(result.attrs.get("min_pixels", 0)),
        }
        return cls(
            result[[*_LC_VARS, *(v for v in _LC_OPTIONAL if v in result)]],
            collection=collection or _collection_for(name),
            sources=tuple(sources),
            parameters=params,
            name=name,
            legend=names,
            confusion=accuracy.confusion if accuracy is not None else None,
            model=meta.to_json(),
            accuracy=accuracy.to_dict() if accuracy is not None else None,
            train_polygons=tuple(report.get("train_polygons", ())),
            validation_polygons=tuple(report.get("validation_polygons", ())),
            colors=colors,
        )

    # --- writing -------------------------------------------------------------------------------
    def _description(self) -> str:
        kind = self.model.get("kind", "?")
        return f"Land cover ({kind}) by mus_lab.classify from {len(self.model.get('features', ()))} features"

    def _properties(self) -> dict[str, Any]:
        report = dict(self.model.get("report", {}))
        validation = report.get("validation", {})
        props: dict[str, Any] = {
            "mus_lab:model": {
                "kind": self.model.get("kind"),
                "uid": self.model.get("uid"),
                "classes": list(self.model.get("classes", sorted(self.legend))),
                "n_features": len(self.model.get("features", ())),
                "variables": list(self.model.get("variables", ())),
                "dates": [self.model["dates"][0], self.model["dates"][-1]]
                if self.model.get("dates")
                else [],
                "regions": list(self.model.get("regions", ())),
                "versions": dict(self.model.get("versions", {})),
            },
            "mus_lab:training": {
                "seed": report.get("seed"),
                "train_ratio": report.get("train_ratio"),
                "samples": report.get("samples"),
                "train_polygons": list(self.train_polygons),
                "validation_polygons": list(self.validation_polygons),
                "validation": {
                    k: validation.get(k) for k in ("overall_accuracy", "kappa", "macro_f1")
                },
            },
        }
        if self.accuracy is not None:
            props["mus_lab:accuracy"] = {
                k: self.accuracy.get(k) for k in ("overall_accuracy", "kappa", "macro_f1")
            }
        return props

    def _asset_fields(self) -> dict[str, dict[str, Any]]:
        codes = sorted(self.legend)
        return {
            "classification": {"classification:classes": stac_classes(self.legend, self.colors)},
            "probability": {"mus_lab:class_codes": codes},
        }

    def _files(self, folder: Path) -> dict[str, Attachment]:
        files: dict[str, Attachment] = {}
        model_doc = dict(self.model) or {
            "kind": "external",
            "classes": sorted(self.legend),
            "class_names": {str(k): v for k, v in self.legend.items()},
        }
        write_json(model_doc, folder / "model.json")
        files["model"] = Attachment(
            folder / "model.json",
            "model metadata: classes, features, parameters, recipe, training report, versions",
        )
        if self.confusion is not None:
            self.confusion.to_csv(folder / "confusion.csv")
            files["confusion"] = Attachment(
                folder / "confusion.csv",
                "confusion matrix (IOTA² layout: rows = reference, columns = produced)",
            )
        if self.accuracy is not None:
            write_json(dict(self.accuracy), folder / "accuracy.json")
            files["accuracy"] = Attachment(
                folder / "accuracy.json",
                "accuracy report (OA, kappa, per-class, area-adjusted)",
            )
        return files

    def _ready(self, folder: Path) -> xr.Dataset:
        """Compute the outputs in one pass into memory-mapped files (the prediction runs once)."""
        import dask.array as dsa

        ds = self.data
        names = [str(n) for n in ds.data_vars]
        if not any(isinstance(ds[n].data, dsa.Array) for n in names):
            return ds
        arrays, targets = [], []
        for name in names:
            da = ds[name]
            mm = np.lib.format.open_memmap(
                folder / f"{name}.npy", mode="w+", dtype=da.dtype, shape=da.shape
            )
            arrays.append(da.data if isinstance(da.data, dsa.Array) else dsa.from_array(da.data))
            targets.append(mm)
        dsa.store(arrays, targets, lock=False)
        out = {}
        for name, mm in zip(names, targets, strict=True):
            mm.flush()
            back = np.load(folder / f"{name}.npy", mmap_mode="r")
            chunks = (-1, 512, 512) if back.ndim == 3 else (512, 512)
            out[name] = ds[name].copy(data=dsa.from_array(back, chunks=chunks))
        return xr.Dataset(out, attrs=ds.attrs)

    # --- reading -------------------------------------------------------------------------------
    @classmethod
    def _collection_for(cls, contract: ProductContract, **kwargs: Any) -> str:
        return _collection_for(kwargs.get("name") or "optical")

    @classmethod
    def _fields(
        cls, item: pystac.Item, data: xr.Dataset, options: dict[str, Any]
    ) -> dict[str, Any]:
        def read(key: str) -> Any:
            if key not in item.assets:
                return None
            href = str(item.assets[key].get_absolute_href())
            if href.endswith(".csv"):
                return ConfusionMatrix.from_csv(href)
            return json.loads(Path(href).read_text())

        training = item.properties.get("mus_lab:training", {}) or {}
        return {
            "name": options.get("name") or str(item.collection_id).removeprefix("landcover-"),
            "legend": _legend_of(item.assets["classification"]),
            "confusion": read("confusion"),
            "model": read("model") or {},
            "accuracy": read("accuracy"),
            "train_polygons": tuple(training.get("train_polygons", ())),
            "validation_polygons": tuple(training.get("validation_polygons", ())),
        }

    def confusion_on(self, reference: xr.DataArray) -> ConfusionMatrix:
        """Confusion matrix of the class map against reference codes (0 = not a reference pixel).

        Parameters
        ----------
        reference
            Class codes on the map's grid (e.g. a half of ``fusion.split_held_out``).

        Returns
        -------
        ConfusionMatrix
            Rows = reference, columns = map, over the product's labels.

        Raises
        ------
        ProductContractError
            No pixel is both a reference pixel and mapped.
        """
        ref = np.asarray(reference.values)
        mapped = np.asarray(self.classification.values)
        at = (ref > 0) & (mapped > 0)
        if not at.any():
            raise ProductContractError(
                f"No reference pixel falls on the {self.name} map: check the polygons and the area."
            )
        labels = self.confusion.labels if self.confusion is not None else tuple(sorted(self.legend))
        return ConfusionMatrix.from_labels(ref[at], mapped[at], labels=labels)

    def renamed(self, name: str) -> LandCoverProduct:
        """The same product under another source name.

        Parameters
        ----------
        name
            New source name.

        Returns
        -------
        LandCoverProduct
        """
        return replace(self, name=name)


def _collection_for(name: str) -> str:
    from mus_lab.contracts import LANDCOVER_COLLECTIONS

    return LANDCOVER_COLLECTIONS.get(name, f"landcover-{name}")


# --- fused land cover ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FusedProduct(Product):
    """A Dempster-Shafer fused land-cover map with belief, plausibility, conflict, confidence.

    Attributes
    ----------
    legend
        Class code -> name (255 = undecided is added on writing).
    fusion
        What the fusion recorded: rule, decision, sources, masses, reliabilities.
    """

    contract: ClassVar[ProductContract] = FUSED

    legend: Mapping[int, str] = field(default_factory=dict)
    fusion: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_fusion(
        cls,
        ds: xr.Dataset,
        *,
        sources: Iterable[Any] = (),
        collection: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> FusedProduct:
        """The product of :func:`mus_lab.fusion.fuse`'s result.

        Parameters
        ----------
        ds
            What ``fuse`` returned (``fused_class`` carries its legend in ``attrs["classes"]``).
        sources
            STAC items or hrefs of the source maps.
        collection
            Collection id (default ``landcover-fused``).
        parameters
            Extra processing parameters to record.

        Returns
        -------
        FusedProduct

        Raises
        ------
        ProductContractError
            ``ds`` is not a fused product, or ``fused_class`` carries no legend.
        """
        import ast

        missing = [v for v in FUSED.required if v not in ds]
        if missing:
            raise ProductContractError(
                f"Not a fused product: {missing} missing. Give what mus_lab.fusion.fuse returned."
            )
        raw = ds["fused_class"].attrs.get("classes")
        try:
            legend = ast.literal_eval(str(raw)) if not isinstance(raw, Mapping) else raw
            legend = {int(k): str(v) for k, v in dict(legend).items()}
        except (ValueError, SyntaxError, TypeError) as exc:
            raise ProductContractError(
                "fused_class carries no class legend (attribute 'classes'): give the Dataset "
                "that mus_lab.fusion.fuse returned."
            ) from exc
        fusion = {
            k: str(ds.attrs[k])
            for k in ("rule", "decision", "sources", "masses", "reliability", "total_conflict")
            if k in ds.attrs
        }
        keep = [v for v in FUSED.names if v in ds]
        return cls(
            ds[keep],
            collection=collection or FUSED.collection,
            sources=tuple(sources),
            parameters=dict(parameters or {}),
            legend=legend,
            fusion=fusion,
        )

    def _description(self) -> str:
        return (
            f"Dempster-Shafer fusion ({self.fusion.get('rule', '?')}) of "
            f"{self.fusion.get('sources', '?')}"
        )

    def _properties(self) -> dict[str, Any]:
        from mus_lab.contracts import FUSED_CONFIDENCE_DEFINITION

        return {"mus_lab:fusion": {**self.fusion, "confidence": FUSED_CONFIDENCE_DEFINITION}}

    def _asset_fields(self) -> dict[str, dict[str, Any]]:
        classes = stac_classes(self.legend)
        classes.append({"value": UNDECIDED, "name": "undecided", "title": "sources tie"})
        agreement = [
            {"value": k, "name": ["none", "all_agree", "second_kept", "first_kept"][k], "title": v}
            for k, v in AGREEMENT_CODES.items()
        ]
        return {
            "fused_class": {"classification:classes": classes},
            "agreement": {"classification:classes": agreement},
        }

    @classmethod
    def _fields(
        cls, item: pystac.Item, data: xr.Dataset, options: dict[str, Any]
    ) -> dict[str, Any]:
        legend = _legend_of(item.assets["fused_class"])
        data["fused_class"].attrs["classes"] = str(legend)
        return {"legend": legend, "fusion": dict(item.properties.get("mus_lab:fusion", {}))}


# --- flood ---------------------------------------------------------------------------------------
def _classes(pairs: Sequence[tuple[int, str]]) -> dict[str, Any]:
    return {"classification:classes": [{"value": v, "name": n} for v, n in pairs]}


@dataclass(frozen=True)
class FloodExtentProduct(Product):
    """Flood extent per SAR date: ``water``, ``flood`` (0/1, 255 no data), ``likelihood`` (0-100).

    Examples
    --------
    >>> FloodExtentProduct(xr.Dataset()).collection
    'flood-extent'
    """

    contract: ClassVar[ProductContract] = FLOOD_EXTENT

    def _description(self) -> str:
        return (
            "Flood extent per SAR date (mus_lab.flood): water, flood (water minus reference "
            "water) and likelihood (0-100) of the consensus of SAR methods."
        )

    def _asset_fields(self) -> dict[str, dict[str, Any]]:
        return {
            "water": _classes([(0, "not-water"), (1, "water"), (255, "no-data")]),
            "flood": _classes([(0, "not-flood"), (1, "flood"), (255, "no-data")]),
        }


@dataclass(frozen=True)
class FloodRiskProduct(Product):
    """Flood time-series products and risk, with the per-zone table.

    Attributes
    ----------
    zones
        The zone table (:data:`mus_lab.contracts.ZONE_COLUMNS`), or None.
    class_names
        Names of the risk classes 1..n.
    """

    contract: ClassVar[ProductContract] = FLOOD_RISK

    zones: Any = field(default=None, repr=False)
    class_names: tuple[str, ...] = RISK_CLASS_NAMES

    def _description(self) -> str:
        return (
            "Flood time-series products and flood risk (mus_lab.flood): maximum extent, "
            "frequency, valid observations, reference water, exclusion, hazard, risk and risk "
            "classes, with a per-zone table."
        )

    def _asset_fields(self) -> dict[str, dict[str, Any]]:
        names = [(i + 1, n.replace(" ", "-")) for i, n in enumerate(self.class_names)]
        extent = _classes([(0, "never-flooded"), (1, "flooded"), (255, "no-data")])
        return {
            "risk_class": _classes([(0, "no-data"), *names]),
            "max_extent": extent,
            "max_extent_low": extent,
            "max_extent_high": extent,
            "reference_water": _classes([(0, "not-water"), (1, "reference-water")]),
        }

    def _files(self, folder: Path) -> dict[str, Attachment]:
        if self.zones is None:
            return {}
        from mus_lab.contracts import ZONE_COLUMNS

        missing = [c for c in ZONE_COLUMNS if c not in self.zones.columns]
        if missing:
            raise ProductContractError(
                f"The zone table lacks the column(s) {missing} (contract: {list(ZONE_COLUMNS)})."
            )
        csv = folder / "zones.csv"
        self.zones.to_csv(csv, index=False)
        return {
            "zones": Attachment(
                csv, "flooded and at-risk hectares per zone and class", roles=("data",)
            )
        }

    @classmethod
    def _fields(
        cls, item: pystac.Item, data: xr.Dataset, options: dict[str, Any]
    ) -> dict[str, Any]:
        import pandas as pd

        classes = item.assets["risk_class"].extra_fields.get("classification:classes", [])
        names = tuple(
            str(c["name"]).replace("-", " ") for c in classes if int(c["value"]) != NODATA_CLASS
        )
        zones = item.assets.get("zones")
        return {
            "zones": pd.read_csv(str(zones.get_absolute_href())) if zones is not None else None,
            "class_names": names or RISK_CLASS_NAMES,
        }
