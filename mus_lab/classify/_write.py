"""Write a land-cover result as COGs + a STAC item (classification extension, provenance).

The four outputs of :func:`predict` share one lazy probability graph. To run the model once
per block and keep memory bounded, they are first computed together, block by block, into
memory-mapped files in a temporary folder beside the catalog; :func:`mus_lab.ard.write` then
writes the COGs (atomically) from those files. The accuracy report (``confusion.csv`` in
IOTA²'s layout, ``accuracy.json``) and the model's metadata are added to the item as metadata
assets, each file in place before the item refers to it. The item property
``mus_lab:training`` records the ids of the training and validation polygons, so that a later
stage (fusion) can score on polygons that trained no map.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import pystac
import xarray as xr

from mus_lab import ard
from mus_lab._io import write_json
from mus_lab.classify._accuracy import AccuracyReport
from mus_lab.classify._legend import CLASSIFICATION_EXTENSION, stac_classes
from mus_lab.classify._model import LandCoverModel
from mus_lab.errors import ClassifyError

__all__ = ["LANDCOVER_COLLECTIONS", "write_landcover"]

#: Collection ids of the land-cover products, per sensor set (shared with fusion).
LANDCOVER_COLLECTIONS = {
    "optical": "landcover-optical",
    "radar": "landcover-radar",
    "stacked": "landcover-stacked",
}
_VARS = ("classification", "confidence", "margin", "probability")


def _materialise(result: xr.Dataset, folder: Path) -> xr.Dataset:
    """Compute the outputs in one pass into memory-mapped files; return them lazily."""
    arrays, targets, out = [], [], {}
    for name in _VARS:
        da = result[name]
        path = folder / f"{name}.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=da.dtype, shape=da.shape)
        arrays.append(da.data if isinstance(da.data, dsa.Array) else dsa.from_array(da.data))
        targets.append(mm)
    dsa.store(arrays, targets, lock=False)
    for name, mm in zip(_VARS, targets, strict=True):
        mm.flush()
        da = result[name]
        back = np.load(folder / f"{name}.npy", mmap_mode="r")
        chunks = (-1, 512, 512) if back.ndim == 3 else (512, 512)
        out[name] = da.copy(data=dsa.from_array(back, chunks=chunks))
    return xr.Dataset(out, attrs=result.attrs)


def write_landcover(
    result: xr.Dataset,
    catalog: str | os.PathLike[str],
    collection: str,
    *,
    model: LandCoverModel,
    accuracy: AccuracyReport | None = None,
    sources: Iterable[Any] = (),
    colors: Mapping[int, str] | None = None,
    description: str = "",
    overwrite: bool = False,
) -> pystac.Collection:
    """Write :func:`predict`'s output into a local catalog as COGs with a STAC ``summary`` item.

    Parameters
    ----------
    result
        Output of :func:`predict` (``classification``, ``confidence``, ``margin``, ``probability``).
    catalog
        Local catalog folder or ``catalog.json``.
    collection
        Collection id (``landcover-optical``, ``landcover-radar``, ``landcover-stacked``...).
    model
        The model that made the map (parameters, training report and metadata are recorded).
    accuracy
        Accuracy report to attach (``confusion`` CSV and ``accuracy`` JSON assets).
    sources
        Source STAC items (``derived_from`` links).
    colors
        Hex colours per class code (default: from the class names).
    overwrite
        Replace an existing collection.

    Returns
    -------
    pystac.Collection
        As written (one ``{collection}-summary`` item).

    Raises
    ------
    ClassifyError
        ``result`` lacks one of the four outputs.
    ARDError
        The collection exists (and not ``overwrite``) or no catalog is there.
    """
    missing = [v for v in _VARS if v not in result]
    if missing:
        raise ClassifyError(f"write_landcover needs predict()'s outputs; missing {missing}.")
    meta = model.metadata
    names = {int(c): meta.class_names.get(int(c), str(c)) for c in meta.classes}
    report = dict(meta.report)
    validation = report.get("validation", {})
    properties: dict[str, Any] = {
        "mus_lab:model": {
            "kind": meta.kind,
            "uid": meta.uid,
            "classes": list(meta.classes),
            "n_features": len(meta.features),
            "variables": list(meta.variables),
            "dates": [meta.dates[0], meta.dates[-1]] if meta.dates else [],
            "regions": list(meta.regions),
            "versions": dict(meta.versions),
        },
        "mus_lab:training": {
            "seed": report.get("seed"),
            "train_ratio": report.get("train_ratio"),
            "samples": report.get("samples"),
            "train_polygons": list(report.get("train_polygons", [])),
            "validation_polygons": list(report.get("validation_polygons", [])),
            "validation": {k: validation.get(k) for k in ("overall_accuracy", "kappa", "macro_f1")},
        },
    }
    if accuracy is not None:
        properties["mus_lab:accuracy"] = {
            "overall_accuracy": accuracy.overall_accuracy,
            "kappa": accuracy.kappa,
            "macro_f1": accuracy.macro_f1,
        }
    parameters = {
        **{k: v for k, v in meta.params.items() if isinstance(v, str | int | float | bool)},
        "model_kind": meta.kind,
        "min_pixels": int(result.attrs.get("min_pixels", 0)),
    }
    root = Path(catalog)
    root_dir = root if root.is_dir() else root.parent
    with tempfile.TemporaryDirectory(prefix=f".{collection}.arrays-", dir=root_dir) as tmp:
        ready = _materialise(result, Path(tmp))
        coll = ard.write(
            ready,
            catalog,
            collection,
            sources=sources,
            parameters=parameters,
            description=description
            or f"Land cover ({meta.kind}) by mus_lab.classify from {len(meta.features)} features",
            overwrite=overwrite,
            level="L3-landcover",
            properties=properties,
            asset_fields={
                "classification": {
                    "classification:classes": stac_classes(names, colors),
                    "title": "land-cover class",
                },
                "confidence": {"title": "confidence of the winning class (0-100)"},
                "margin": {"title": "top-1 minus top-2 probability (0-100)"},
                "probability": {
                    "title": "class probabilities (one band per class code)",
                    "mus_lab:class_codes": list(meta.classes),
                },
            },
            extensions=(CLASSIFICATION_EXTENSION,),
        )
    item = next(iter(coll.get_items()))
    item_href, coll_href = item.get_self_href(), coll.get_self_href()
    if item_href is None or coll_href is None:  # pragma: no cover - ard.write always saves
        raise ClassifyError(f"The written collection {collection!r} has no file location.")
    item_path = Path(item_href)
    doc = json.loads(item_path.read_text())
    write_json(meta.to_json(), item_path.parent / "model.json")
    doc["assets"]["model"] = {
        "href": "./model.json",
        "type": "application/json",
        "roles": ["metadata"],
        "title": "model metadata: classes, features, parameters, training report, versions",
    }
    if accuracy is not None:
        accuracy.confusion.to_csv(item_path.parent / "confusion.csv")
        write_json(accuracy.to_dict(), item_path.parent / "accuracy.json")
        doc["assets"]["confusion"] = {
            "href": "./confusion.csv",
            "type": "text/csv",
            "roles": ["metadata"],
            "title": "confusion matrix (IOTA² layout: rows = reference, columns = produced)",
        }
        doc["assets"]["accuracy"] = {
            "href": "./accuracy.json",
            "type": "application/json",
            "roles": ["metadata"],
            "title": "accuracy report (OA, kappa, per-class, area-adjusted)",
        }
    write_json(doc, item_path)
    return pystac.Collection.from_file(coll_href)
