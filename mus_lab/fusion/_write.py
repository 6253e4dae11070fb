"""Write the fused product as COGs with STAC items into a local catalog (``landcover-fused``)."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pystac
import xarray as xr

from mus_lab.errors import FusionError
from mus_lab.fusion._frame import UNDECIDED
from mus_lab.fusion._fuse import _OUT_DTYPES, AGREEMENT_CODES, CONFIDENCE_DEFINITION

__all__ = ["CLASSIFICATION_EXTENSION", "FUSED_COLLECTION", "write_fused"]

FUSED_COLLECTION = "landcover-fused"
CLASSIFICATION_EXTENSION = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
LEVEL = "L3-landcover-fused"


def _stac_name(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_-]", "_", name) or "class"


def _legend(ds: xr.Dataset) -> dict[int, str]:
    try:
        legend = ast.literal_eval(str(ds["fused_class"].attrs["classes"]))
        return {int(k): str(v) for k, v in dict(legend).items()}
    except (KeyError, ValueError, SyntaxError) as exc:
        raise FusionError(
            "fused_class carries no class legend (attribute 'classes'): write the Dataset that "
            "fuse(), fuse_labels() or fuse_probabilities() returned."
        ) from exc


def write_fused(
    ds: xr.Dataset,
    catalog: str | os.PathLike[str],
    *,
    collection: str = FUSED_COLLECTION,
    sources: Iterable[Any] = (),
    parameters: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    description: str = "",
) -> pystac.Collection:
    """Write a fused product (COGs + one ``summary`` STAC item) into a local catalog, atomically.

    ``fused_class`` and ``agreement`` carry the STAC classification extension (class codes and
    names, 255 = undecided); every item records the rule, decision, sources and their
    reliabilities (``mus_lab:fusion``) and links the source items (``derived_from``).

    Parameters
    ----------
    ds
        What :func:`fuse`, :func:`fuse_labels` or :func:`fuse_probabilities` returned (on a
        grid with a CRS).
    catalog
        Local catalog folder or ``catalog.json``.
    collection
        Collection id (default ``landcover-fused``).
    sources
        STAC items (or hrefs) of the source maps.
    parameters
        Extra processing parameters to record.
    overwrite
        Replace an existing collection.

    Returns
    -------
    pystac.Collection

    Raises
    ------
    FusionError
        ``ds`` is not a fused product.
    ARDError
        No catalog there, or the collection exists and ``overwrite`` is False.
    """
    from mus_lab import ard

    missing = [v for v in _OUT_DTYPES if v not in ds]
    if missing:
        raise FusionError(
            f"Not a fused product: {missing} missing. Write what fuse(), fuse_labels() or "
            "fuse_probabilities() returned."
        )
    legend = _legend(ds)
    classes = [
        {"value": int(c), "name": _stac_name(n), "description": n} for c, n in legend.items()
    ]
    classes.append({"value": UNDECIDED, "name": "undecided", "description": "sources tie"})
    agreement = [
        {
            "value": k,
            "name": ["none", "all_agree", "second_kept", "first_kept"][k],
            "description": v,
        }
        for k, v in AGREEMENT_CODES.items()
    ]
    fusion = {
        k: str(ds.attrs[k])
        for k in ("rule", "decision", "sources", "masses", "reliability", "total_conflict")
        if k in ds.attrs
    }
    fusion["confidence"] = CONFIDENCE_DEFINITION
    variables = [v for v in ds.data_vars if v in _OUT_DTYPES or v == "source_confidence"]
    return ard.write(
        ds[variables],
        catalog,
        collection,
        sources=sources,
        parameters=dict(parameters or {}),
        description=description
        or f"Dempster-Shafer fusion ({fusion.get('rule', '?')}) of {fusion.get('sources', '?')}",
        overwrite=overwrite,
        level=LEVEL,
        properties={"mus_lab:fusion": fusion},
        asset_fields={
            "fused_class": {"classification:classes": classes},
            "agreement": {"classification:classes": agreement},
        },
        extensions=[CLASSIFICATION_EXTENSION],
    )
