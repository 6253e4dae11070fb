"""Write a land-cover result as a product (COGs + STAC item) through :mod:`mus_lab.publish`.

The outputs of :func:`predict` share one lazy probability graph: the product computes them
together, block by block, into memory-mapped files before the COGs are written, so the model
runs once per block (:meth:`mus_lab.publish.LandCoverProduct.write`). The accuracy report
(``confusion.csv`` in IOTA²'s layout, ``accuracy.json``) and the model's metadata (with its
recipe) are assets of the item; ``mus_lab:training`` records the ids of the training and
validation polygons, so that fusion can score on polygons that trained no map.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import pystac
import xarray as xr

from mus_lab.classify._accuracy import AccuracyReport
from mus_lab.classify._model import LandCoverModel
from mus_lab.contracts import LANDCOVER_COLLECTIONS
from mus_lab.publish import LandCoverProduct

__all__ = ["LANDCOVER_COLLECTIONS", "landcover_product", "write_landcover"]


def landcover_product(
    result: xr.Dataset,
    model: LandCoverModel,
    *,
    accuracy: AccuracyReport | None = None,
    name: str = "optical",
    collection: str | None = None,
    sources: Iterable[Any] = (),
    colors: Mapping[int, str] | None = None,
) -> LandCoverProduct:
    """The land-cover product of a prediction, in memory (fuse it, or write it).

    Parameters
    ----------
    result
        Output of :func:`predict`.
    model
        The model that made the map.
    accuracy
        Its accuracy report on held-out polygons (gives the product's confusion matrix).
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
    mus_lab.publish.LandCoverProduct

    Raises
    ------
    ProductContractError
        ``result`` lacks one of predict()'s outputs.
    """
    return LandCoverProduct.from_prediction(
        result,
        model=model,
        accuracy=accuracy,
        name=name,
        collection=collection,
        sources=sources,
        colors=colors,
    )


def write_landcover(
    result: xr.Dataset,
    catalog: str | os.PathLike[str],
    collection: str,
    *,
    model: LandCoverModel,
    accuracy: AccuracyReport | None = None,
    sources: Iterable[Any] = (),
    colors: Mapping[int, str] | None = None,
    overwrite: bool = False,
) -> pystac.Collection:
    """Write :func:`predict`'s output into a local catalog as a land-cover product.

    Same as ``landcover_product(result, model, ...).write(catalog)``.

    Parameters
    ----------
    result
        Output of :func:`predict` (``classification``, ``confidence``, ``margin``, ``probability``).
    catalog
        Local catalog folder or ``catalog.json``.
    collection
        Collection id (``landcover-optical``, ``landcover-radar``, ``landcover-stacked``...).
    model
        The model that made the map (parameters, recipe, training report are recorded).
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
    ProductContractError
        ``result`` lacks one of the four outputs.
    PublishError
        The collection exists (and not ``overwrite``) or no catalog is there.
    """
    name = next((k for k, v in LANDCOVER_COLLECTIONS.items() if v == collection), collection)
    product = landcover_product(
        result,
        model,
        accuracy=accuracy,
        name=name.removeprefix("landcover-"),
        collection=collection,
        sources=sources,
        colors=colors,
    )
    return product.write(catalog, overwrite=overwrite)
