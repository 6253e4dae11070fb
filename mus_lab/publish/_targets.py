"""Where products go: a :class:`Target` protocol, the local static catalog as the default.

The dissemination work (a STAC API with transactions, OGC WMS/WCS/WPS) plugs in here as other
targets: anything with ``publish(product)`` and ``open(kind, collection)`` works wherever a
catalog path does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import pystac

from mus_lab.publish._products import Product

__all__ = ["StaticCatalog", "Target"]

P = TypeVar("P", bound=Product)


@runtime_checkable
class Target(Protocol):
    """Somewhere products can be published to and opened from."""

    def publish(
        self, product: Product, *, collection: str | None = None, overwrite: bool = False
    ) -> pystac.Collection:
        """Publish a product.

        Parameters
        ----------
        product
            Any :class:`~mus_lab.publish.Product`.
        collection
            Collection id (default: the product's).
        overwrite
            Replace an existing collection.

        Returns
        -------
        pystac.Collection

        Raises
        ------
        PublishError
            The collection exists and ``overwrite`` is False, or the target cannot be written.
        """
        ...

    def open(self, kind: type[P], collection: str | None = None, **kwargs: Any) -> P:
        """Open a product of a kind (e.g. ``LandCoverProduct``) from the target.

        Parameters
        ----------
        kind
            The product class.
        collection
            Collection id (default: the kind's).
        **kwargs
            Reader options (``bbox``, ``datetime``, ``chunks``...).

        Returns
        -------
        Product
        """
        ...


@dataclass(frozen=True)
class StaticCatalog(Target):
    """A local static STAC catalog (a folder with ``catalog.json``), the default target.

    Attributes
    ----------
    path
        The catalog folder.

    Examples
    --------
    >>> import tempfile
    >>> from mus_lab.publish import LandCoverProduct
    >>> target = StaticCatalog.create(Path(tempfile.mkdtemp()) / "products")
    >>> (target.path / "catalog.json").is_file(), isinstance(target, Target)
    (True, True)
    """

    path: Path

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], *, title: str = "mus_lab products"
    ) -> StaticCatalog:
        """Open a local catalog, creating an empty one if the folder has none.

        Parameters
        ----------
        path
            Folder of the catalog (or its ``catalog.json``).
        title
            Description of a new catalog.

        Returns
        -------
        StaticCatalog
        """
        folder = Path(path)
        folder = folder.parent if folder.name == "catalog.json" else folder
        if not (folder / "catalog.json").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            pystac.Catalog("mus_lab", title).normalize_and_save(
                str(folder), pystac.CatalogType.SELF_CONTAINED
            )
        return cls(folder)

    def publish(
        self, product: Product, *, collection: str | None = None, overwrite: bool = False
    ) -> pystac.Collection:
        return product.write(self.path, collection=collection, overwrite=overwrite)

    def open(self, kind: type[P], collection: str | None = None, **kwargs: Any) -> P:
        return kind.from_catalog(self.path, collection, **kwargs)
