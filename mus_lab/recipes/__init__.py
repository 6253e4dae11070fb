"""Recipes: the orchestration that searches a catalog and chains the stages.

A recipe accepts a local catalog (folder or ``catalog.json``), a STAC API URL or a
:class:`~mus_lab.catalog.SearchResult` already found, picks the one reference grid (the
Sentinel-2 grid of the area, :func:`reference_grid`) and calls stage functions; stages never
search. A model trained through a recipe records it, and so does one trained through the stage
functions by hand: :func:`replay_features` rebuilds its features either way.

- :func:`features_from_catalog` / :func:`replay_features`: land-cover features per sensor set;
  :func:`features_from_ard` the same from ARD already prepared (a chain's ARD files).
- :func:`sources_from_catalog`: the land-cover products of a catalog as fusion sources.
- :func:`run_risk`: flood extent, flood series products and risk, written as products.

Examples
--------
>>> from mus_lab import recipes
>>> len(recipes.find(tiny.catalog_path, "sentinel-2-l2a")) > 0
True
"""

from mus_lab.recipes._flood import LANDCOVER_SEARCH_ORDER, run_risk
from mus_lab.recipes._fusion import sources_from_catalog
from mus_lab.recipes._landcover import (
    features_from_ard,
    features_from_catalog,
    optical_bands_of,
    replay_features,
)
from mus_lab.recipes._search import CatalogLike, find, reference_grid, source_of

__all__ = [
    "LANDCOVER_SEARCH_ORDER",
    "CatalogLike",
    "features_from_ard",
    "features_from_catalog",
    "find",
    "optical_bands_of",
    "reference_grid",
    "replay_features",
    "run_risk",
    "source_of",
    "sources_from_catalog",
]
