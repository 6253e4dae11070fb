"""Write the fused product through :mod:`mus_lab.publish` (``landcover-fused``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import pystac
import xarray as xr

from mus_lab.contracts import FUSED
from mus_lab.publish import FusedProduct

__all__ = ["FUSED_COLLECTION", "write_fused"]

FUSED_COLLECTION = FUSED.collection


def write_fused(
    ds: xr.Dataset,
    catalog: str | os.PathLike[str],
    *,
    collection: str = FUSED_COLLECTION,
    sources: Iterable[Any] = (),
    parameters: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> pystac.Collection:
    """Write a fused product (COGs + one ``summary`` STAC item) into a local catalog, atomically.

    Same as ``FusedProduct.from_fusion(ds, ...).write(catalog)``: ``fused_class`` and
    ``agreement`` carry the STAC classification extension (class codes and names, 255 =
    undecided); the item records the rule, decision, sources and their reliabilities
    (``mus_lab:fusion``) and links the source items (``derived_from``).

    Parameters
    ----------
    ds
        What :func:`fuse` returned (on a grid with a CRS).
    catalog
        Local catalog folder or ``catalog.json``.
    collection
        Collection id (default ``landcover-fused``).
    sources
        STAC items (or hrefs) of the source maps.
    parameters
        Extra processing parameters to record.
    overwrite
        Replace an earlier fused product.

    Returns
    -------
    pystac.Collection
        With one ``landcover-fused-summary`` item.

    Raises
    ------
    ProductContractError
        ``ds`` is not a fused product.
    PublishError
        No catalog there, or the collection exists and ``overwrite`` is False.
    """
    product = FusedProduct.from_fusion(
        ds, sources=sources, collection=collection, parameters=parameters
    )
    return product.write(catalog, overwrite=overwrite)
