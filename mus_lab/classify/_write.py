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
from typing import Any, TypedDict, Unpack

import pystac
import xarray as xr

from mus_lab.classify._accuracy import AccuracyReport
from mus_lab.classify._model import LandCoverModel
from mus_lab.contracts import LANDCOVER_COLLECTIONS
from mus_lab.publish import LandCoverProduct

__all__ = ["LANDCOVER_COLLECTIONS", "landcover_product", "write_landcover"]


class _ProductOptions(TypedDict, total=False):
    """Keywords of :meth:`mus_lab.publish.LandCoverProduct.from_prediction` besides the model."""

    accuracy: AccuracyReport | None
    name: str
    collection: str | None
    sources: Iterable[Any]
    colors: Mapping[int, str] | None


def landcover_product(
    result: xr.Dataset, model: LandCoverModel, **options: Unpack[_ProductOptions]
) -> LandCoverProduct:
    """The land-cover product of a prediction, in memory (fuse it, or write it).

    Same as ``LandCoverProduct.from_prediction(result, model=model, **options)``.

    Parameters
    ----------
    result
        Output of :func:`predict`.
    model
        The model that made the map.
    **options
        ``accuracy`` (its report on held-out polygons: the product's confusion matrix),
        ``name`` (source name, default ``"optical"``), ``collection``, ``sources`` and
        ``colors``: see :meth:`~mus_lab.publish.LandCoverProduct.from_prediction`.

    Returns
    -------
    mus_lab.publish.LandCoverProduct

    Raises
    ------
    ProductContractError
        ``result`` lacks one of predict()'s outputs.

    Examples
    --------
    >>> from mus_lab import classify, recipes
    >>> feats, _, _ = recipes.features_from_catalog(tiny.catalog_path, every_days=30)
    >>> samples = classify.extract_samples(feats, tiny.polygons, layer="reference")
    >>> model = classify.train(samples, "rf", params={"n_estimators": 10})
    >>> product = landcover_product(classify.predict(feats, model), model, name="optical")
    >>> product.collection
    'landcover-optical'
    """
    return LandCoverProduct.from_prediction(result, model=model, **options)


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
