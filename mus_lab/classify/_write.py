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

__all__ = ["LANDCOVER_COLLECTIONS", "write_landcover"]


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

    Same as ``LandCoverProduct.from_prediction(result, model=model, ...).write(catalog)``
    (:class:`mus_lab.publish.LandCoverProduct`), which also gives the product in memory, to
    fuse without writing it.

    Parameters
    ----------
    result
        Output of :func:`predict` (``classification``, ``confidence``, ``margin``, ``entropy``,
        ``probability``).
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
    product = LandCoverProduct.from_prediction(
        result,
        model=model,
        accuracy=accuracy,
        name=name.removeprefix("landcover-"),
        collection=collection,
        sources=sources,
        colors=colors,
    )
    return product.write(catalog, overwrite=overwrite)
