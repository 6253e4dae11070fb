"""Products out: the one writer of COGs + STAC items, typed products, exports and openers.

Every stage that makes a product writes it through here, and every reader (the next stage,
the dashboards, the services) opens it through here, so that what a product holds is defined
once (:mod:`mus_lab.contracts`) and checked on both sides.

- :func:`write_collection`: a cube -> COGs + STAC items (proj, raster, processing, file,
  classification), atomically, one writer per collection (lock + sweep of what killed writers
  left), ``file:checksum``/``file:size`` on every asset, ``derived_from`` links.
- Typed products with symmetric ``write(catalog)`` / ``from_catalog(catalog)`` and in-memory
  constructors: :class:`ArdProduct`, :class:`LandCoverProduct` (``from_prediction``,
  ``from_maps``), :class:`FusedProduct` (``from_fusion``), :class:`FloodExtentProduct`,
  :class:`FloodRiskProduct`.
- Exports: ``product.to_folder(path)`` (a self-contained catalog), :func:`to_geotiff`.
- Openers: :func:`open_raster` (the one GeoTIFF opener), :func:`check_item` (an item against
  its contract), :func:`verify_checksums`.
- Targets: where products go. :class:`StaticCatalog` (a local folder) is the default;
  :class:`StacApiTarget` also sends what it writes to a STAC API (transactions, a token);
  the OGC services of the dissemination work plug in as other :class:`Target` implementations.

Examples
--------
>>> from mus_lab import publish
>>> publish.LandCoverProduct.contract.kind
'landcover'
"""

from mus_lab.publish._confusion import ConfusionMatrix
from mus_lab.publish._export import to_geotiff
from mus_lab.publish._legend import class_colors, stac_classes
from mus_lab.publish._lock import collection_lock, stale_paths
from mus_lab.publish._products import (
    ArdProduct,
    FloodExtentProduct,
    FloodRiskProduct,
    FusedProduct,
    LandCoverProduct,
    Product,
    find_items,
)
from mus_lab.publish._read import (
    check_item,
    latest_item,
    open_asset,
    open_raster,
    verify_checksums,
)
from mus_lab.publish._stac_api import StacApiTarget
from mus_lab.publish._targets import StaticCatalog, Target
from mus_lab.publish._tiles import (
    CLASS_COLORMAPS,
    SCORE_COLORMAPS,
    asset_render,
    class_colormap,
    collection_tile_url,
    item_tile_url,
    true_colour_render,
)
from mus_lab.publish._writer import Attachment, catalog_json, checksum, write_collection

__all__ = [
    "CLASS_COLORMAPS",
    "SCORE_COLORMAPS",
    "ArdProduct",
    "Attachment",
    "ConfusionMatrix",
    "FloodExtentProduct",
    "FloodRiskProduct",
    "FusedProduct",
    "LandCoverProduct",
    "Product",
    "StacApiTarget",
    "StaticCatalog",
    "Target",
    "asset_render",
    "catalog_json",
    "check_item",
    "checksum",
    "class_colormap",
    "class_colors",
    "collection_lock",
    "collection_tile_url",
    "find_items",
    "item_tile_url",
    "latest_item",
    "open_asset",
    "open_raster",
    "stac_classes",
    "stale_paths",
    "to_geotiff",
    "true_colour_render",
    "verify_checksums",
    "write_collection",
]
