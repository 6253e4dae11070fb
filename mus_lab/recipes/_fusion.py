"""The land-cover products of a catalog as fusion sources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mus_lab.contracts import LANDCOVER_COLLECTIONS
from mus_lab.errors import FusionError, MissingLandCoverError, PublishError
from mus_lab.publish import LandCoverProduct
from mus_lab.recipes._search import CatalogLike

__all__ = ["sources_from_catalog"]

_HOW = (
    "run notebooks/03_landcover.ipynb on this catalog first (or 'mus-lab landcover predict'), "
    "which writes the maps with their probabilities and confusion matrices"
)


def sources_from_catalog(
    catalog: CatalogLike,
    collections: Mapping[str, str] | None = None,
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    chunks: int | None = None,
) -> list[LandCoverProduct]:
    """Read land-cover products (maps, probabilities, confusion matrices) from a catalog, lazily.

    Parameters
    ----------
    catalog
        Local catalog (folder or ``catalog.json``), STAC API URL or items already found.
    collections
        Source name -> land-cover collection id, first source first (default
        ``{"optical": "landcover-optical", "radar": "landcover-radar"}``).
    bbox
        Area ``[west, south, east, north]`` in degrees: the maps are cropped to it.
    datetime
        Period searched (products whose period meets it); None: any.
    chunks
        Spatial chunk size of the lazy maps (default: the setting).

    Returns
    -------
    list of mus_lab.publish.LandCoverProduct
        One per collection, in order; the ``summary`` item of each (the latest when several).

    Raises
    ------
    MissingLandCoverError
        A collection is absent or empty, lacks the probability or confusion asset, or the area
        misses it; the message says to run notebook 03 first.
    FusionError
        No collection asked for.

    Examples
    --------
    >>> sources_from_catalog(tiny.catalog_path)
    Traceback (most recent call last):
    ...
    mus_lab.errors.MissingLandCoverError: No land-cover product 'landcover-optical' (optical) ...
    """
    wanted = dict(collections or {k: LANDCOVER_COLLECTIONS[k] for k in ("optical", "radar")})
    if not wanted:
        raise FusionError("Give at least one land-cover collection to read.")
    out = []
    for name, collection in wanted.items():
        try:
            product = LandCoverProduct.from_catalog(
                catalog, collection, name=name, bbox=bbox, datetime=datetime, chunks=chunks
            )
        except PublishError as exc:
            raise MissingLandCoverError(
                f"No land-cover product {collection!r} ({name}) usable for this area and period "
                f"({exc}): {_HOW}."
            ) from exc
        missing = [
            what
            for what, value in (
                ("probability", product.probability),
                ("confusion", product.confusion),
            )
            if value is None
        ]
        if missing:
            raise MissingLandCoverError(
                f"The {collection!r} product lacks {missing}: {_HOW} (classify.write_landcover "
                "writes 'confusion' only when given accuracy=...)."
            )
        out.append(product)
    return out
