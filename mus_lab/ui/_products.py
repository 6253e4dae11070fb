"""Finding the products a dashboard shows, and saying how to make them when they are missing.

Products are found like any other data: ``mus_lab.catalog.search(catalog, collections=...)``
with the collection ids of the product contracts (``docs/design/0001-data-contracts.md`` and
the contracts between stages): ``flood-risk``, ``flood-extent``, ``landcover-optical``,
``landcover-radar``, ``landcover-fused``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pystac

from mus_lab.errors import EmptySearchError, MusLabError, UnknownCollectionError
from mus_lab.ui._i18n import translate

__all__ = ["PRODUCT_NOTEBOOKS", "Products", "find_products", "how_to_make", "latest"]

#: The curated notebook (its number in ``notebooks/``) that writes each product collection.
PRODUCT_NOTEBOOKS: dict[str, str] = {
    "landcover-optical": "03",
    "landcover-radar": "03",
    "landcover-fused": "04",
    "flood-extent": "05",
    "flood-risk": "05",
}

_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass(frozen=True)
class Products:
    """What a search for some product collections found.

    Attributes
    ----------
    catalog
        The catalog searched (``""`` when none is configured).
    items
        Items per collection found (collections without items are absent).
    missing
        Collections asked for and not found.
    error
        Why the catalog could not be searched at all (then nothing is found).
    """

    catalog: str
    items: dict[str, tuple[pystac.Item, ...]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    error: str | None = None

    def has(self, collection: str) -> bool:
        return bool(self.items.get(collection))


def find_products(catalog: str | os.PathLike[str] | None, collections: Sequence[str]) -> Products:
    """Search ``catalog`` for each product collection; never raises for missing products.

    Example
    -------
    >>> find_products(None, ["flood-risk"]).missing
    ('flood-risk',)
    """
    from mus_lab import catalog as cat

    if not catalog:
        return Products("", missing=tuple(collections), error="no catalog")
    source = os.fspath(catalog)
    found: dict[str, tuple[pystac.Item, ...]] = {}
    missing: list[str] = []
    for collection in collections:
        try:
            found[collection] = tuple(cat.search(source, collections=collection))
        except (UnknownCollectionError, EmptySearchError):
            missing.append(collection)
        except MusLabError as exc:
            return Products(source, missing=tuple(collections), error=str(exc))
    return Products(source, found, tuple(missing))


def latest(items: Sequence[pystac.Item]) -> pystac.Item:
    """The most recent item (a product's summary item is written last)."""
    return max(items, key=lambda it: (it.datetime is not None, it.datetime, it.id))


def _notebooks_up_to(number: str) -> list[str] | None:
    if not _NOTEBOOKS.is_dir():
        return None
    chain = sorted(p for p in _NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if p.name[:2] <= number)
    if not any(p.name.startswith(f"{number}_") for p in chain):
        return None
    return [f"notebooks/{p.name}" for p in chain]


def how_to_make(collection: str, catalog: str | None) -> str:
    """The exact ``mus-lab`` command that writes ``collection`` into ``catalog``.

    It runs the curated notebooks up to the one that makes the product (earlier ones make its
    inputs), in one chain, on that catalog.

    Example
    -------
    >>> how_to_make("flood-risk", "cat.json").startswith("mus-lab run notebooks/0")
    True
    """
    number = PRODUCT_NOTEBOOKS.get(collection, "05")
    notebooks = _notebooks_up_to(number)
    listed = " ".join(notebooks) if notebooks else f"notebooks/0[1-{number[-1]}]_*.ipynb"
    where = f" -p catalog {catalog}" if catalog else ""
    return f"mus-lab run {listed}{where}"


def missing_message(products: Products, what_key: str, language: str = "en") -> str:
    """A Markdown message for a dashboard without its products: what is missing, how to make it."""
    if products.error == "no catalog":
        return f"**{translate('no_catalog', language)}**\n\n{translate('no_catalog_how', language)}"
    if products.error:
        return f"**{translate('catalog_error', language, error=products.error)}**\n\n" + translate(
            "no_catalog_how", language
        )
    what = translate(what_key, language)
    # The notebooks up to the last one that makes a missing product make them all.
    first = max(products.missing or ("flood-risk",), key=lambda c: PRODUCT_NOTEBOOKS.get(c, "99"))
    return (
        f"**{translate('no_products', language, what=what, catalog=products.catalog)}**\n\n"
        f"{translate('how_to_make', language)}\n\n"
        f"```\n{how_to_make(first, products.catalog)}\n```\n\n"
        f"{translate('or_whole_chain', language)}"
    )
