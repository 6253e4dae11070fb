"""Finding the products a dashboard shows, and saying how to make them when they are missing.

Products are found like any other data: ``mus_lab.catalog.search(catalog, collections=...)``
with the collection ids of the product contracts (:mod:`mus_lab.contracts`):
``flood-risk``, ``flood-extent``, ``landcover-optical``, ``landcover-radar``,
``landcover-fused``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pystac

from mus_lab.contracts import FLOOD_EXTENT, FLOOD_RISK, FUSED, LANDCOVER_COLLECTIONS
from mus_lab.errors import EmptySearchError, MusLabError, UnknownCollectionError
from mus_lab.ui._i18n import translate

__all__ = ["PRODUCT_NOTEBOOKS", "Products", "find_products", "how_to_make", "missing_message"]

#: The curated notebook (its number in ``notebooks/``) that writes each product collection.
PRODUCT_NOTEBOOKS: dict[str, str] = {
    **dict.fromkeys((LANDCOVER_COLLECTIONS["optical"], LANDCOVER_COLLECTIONS["radar"]), "03"),
    FUSED.collection: "04",
    **dict.fromkeys((FLOOD_EXTENT.collection, FLOOD_RISK.collection), "05"),
}

_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass(frozen=True)
class Products:
    """What a search for some product collections found.

    Parameters
    ----------
    catalog : str
        The catalog searched (``""`` when none is configured).
    items : dict of str to tuple of pystac.Item, optional
        Items per collection found (collections without items are absent).
    missing : tuple of str, optional
        Collections asked for and not found.
    error : str, optional
        Why the catalog could not be searched at all (then nothing is found);
        ``"no catalog"`` when none is configured.

    Raises
    ------
    None
        A record of a search (:func:`find_products` makes it).

    Examples
    --------
    >>> found = find_products(tiny.catalog_path, ["dem", "flood-risk"])
    >>> found.has("dem"), found.has("flood-risk"), found.missing
    (True, False, ('flood-risk',))
    """

    catalog: str
    items: dict[str, tuple[pystac.Item, ...]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    error: str | None = None

    def has(self, collection: str) -> bool:
        """Whether ``collection`` was found with at least one item.

        Parameters
        ----------
        collection : str
            A collection id asked for.

        Returns
        -------
        bool
            True when the search found items of it.
        """
        return bool(self.items.get(collection))


def find_products(catalog: str | os.PathLike[str] | None, collections: Sequence[str]) -> Products:
    """Search ``catalog`` for each product collection; never raises for missing products.

    Parameters
    ----------
    catalog : str, path-like or None
        Local catalog (folder or ``catalog.json``) or STAC API URL; None or ``""`` when the
        dashboard has none configured.
    collections : sequence of str
        Product collection ids to look for (``"flood-risk"``...).

    Returns
    -------
    Products
        Items per collection found, the collections missing, and the error when the catalog
        itself could not be searched (then every collection is missing).

    Examples
    --------
    >>> find_products(None, ["flood-risk"]).missing
    ('flood-risk',)
    >>> len(find_products(tiny.catalog_path, ["dem"]).items["dem"])
    1
    >>> find_products("nowhere/catalog.json", ["dem"]).error is not None
    True
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


def _notebooks_up_to(number: str) -> list[str] | None:
    if not _NOTEBOOKS.is_dir():
        return None
    # 00 finds and harvests provider data: the product chain on a catalog starts at 01.
    chain = sorted(p for p in _NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if "01" <= p.name[:2] <= number)
    if not any(p.name.startswith(f"{number}_") for p in chain):
        return None
    return [f"notebooks/{p.name}" for p in chain]


def how_to_make(collection: str, catalog: str | None) -> str:
    """The exact ``mus-lab`` command that writes ``collection`` into ``catalog``.

    It runs the curated notebooks up to the one that makes the product (earlier ones make its
    inputs), in one chain, on that catalog.

    Parameters
    ----------
    collection : str
        A product collection id (a key of :data:`PRODUCT_NOTEBOOKS`; others get notebook 05).
    catalog : str or None
        The catalog the dashboard reads, passed as the notebooks' ``catalog`` parameter.

    Returns
    -------
    str
        A shell command: ``mus-lab run notebooks/01_... notebooks/0N_... -p catalog <catalog>``
        (a glob of the notebooks when the repository's ``notebooks/`` is not there).

    Examples
    --------
    >>> how_to_make("landcover-fused", "cat.json").split()
    ['mus-lab', 'run', 'notebooks/01_search_and_load.ipynb', 'notebooks/02_ard.ipynb',
     'notebooks/03_landcover.ipynb', 'notebooks/04_fusion.ipynb', '-p', 'catalog', 'cat.json']
    """
    number = PRODUCT_NOTEBOOKS.get(collection, "05")
    notebooks = _notebooks_up_to(number)
    listed = " ".join(notebooks) if notebooks else f"notebooks/0[1-{number[-1]}]_*.ipynb"
    where = f" -p catalog {catalog}" if catalog else ""
    return f"mus-lab run {listed}{where}"


def missing_message(products: Products, what_key: str, language: str = "en") -> str:
    """A Markdown message for a dashboard without its products: what is missing, how to make it.

    Parameters
    ----------
    products : Products
        What :func:`find_products` found.
    what_key : str
        Label key naming the products (``"flood_what"``, ``"landcover_what"``).
    language : str, optional
        ``"en"`` (default) or ``"fr"``.

    Returns
    -------
    str
        Markdown: no catalog -> how to make the sample and point the dashboards at it; an
        unreadable catalog -> the error; missing products -> the exact ``mus-lab run``
        command (:func:`how_to_make`) for the last missing one.

    Examples
    --------
    >>> print(missing_message(find_products(None, ["flood-risk"]), "flood_what", "fr"))
    **Aucun catalogue n'est configuré pour ce tableau de bord.**
    <BLANKLINE>
    Produisez les données d'exemple avec `mus-lab demo`, ...
    """
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
