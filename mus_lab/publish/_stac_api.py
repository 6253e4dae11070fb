"""A STAC API with the transaction extension as a publishing :class:`Target`.

:class:`StacApiTarget` writes a product through the one writer into its product store (a
:class:`StaticCatalog`: the COGs live there) and then sends the collection and its items to
the API: ``POST /collections`` (``PUT`` when it exists), ``POST .../items`` (``PUT`` when
the item exists), so publishing twice leaves one item. Asset hrefs go out absolute
(the store's files). With ``overwrite=True`` the API's items of that collection that the
new product no longer has are deleted.

Every write carries ``Authorization: Bearer TOKEN``; the token is never in a repr, a
message or an exception (the server's answer is quoted with the token removed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import pystac
import requests

from mus_lab.errors import PublishError
from mus_lab.publish._products import Product
from mus_lab.publish._targets import StaticCatalog, Target

__all__ = ["TOKEN_ENV", "StacApiTarget"]

P = TypeVar("P", bound=Product)

#: Where :class:`StacApiTarget` finds the publishing token when none is given.
TOKEN_ENV = "MUS_LAB_STAC_API_TOKEN"
_SERVER_LINKS = frozenset({"self", "root", "parent", "child", "item", "items", "collection"})


@dataclass(frozen=True)
class StacApiTarget(Target):
    """A STAC API (transaction extension) as a target, the files kept in a product store.

    Attributes
    ----------
    url
        The API's root URL (``http://127.0.0.1:PORT``).
    store
        Where the product's files are written (:class:`StaticCatalog`); the API's items
        point at them.
    token
        The publishing token (default: ``$MUS_LAB_STAC_API_TOKEN``); never shown.
    timeout
        Seconds per HTTP request.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> store = StaticCatalog.create(Path(tempfile.mkdtemp()) / "products")
    >>> target = StacApiTarget("http://127.0.0.1:8081", store, token="s3cret")
    >>> "s3cret" in repr(target), isinstance(target, Target)
    (False, True)
    """

    url: str
    store: StaticCatalog
    token: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    def _token(self) -> str:
        token = self.token or os.environ.get(TOKEN_ENV)
        if not token:
            raise PublishError(
                f"Publishing to {self.url} needs its token: pass token=... or set "
                f"{TOKEN_ENV} (`make services` writes it to .services/stac-api/token)."
            )
        return token

    def _request(
        self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)
    ) -> requests.Response:
        token = self._token()
        url = self.url.rstrip("/") + path
        try:
            answer = requests.request(
                method,
                url,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise PublishError(
                f"The STAC API at {self.url} cannot be reached ({type(exc).__name__}): "
                "start it (`make services`) or check the URL."
            ) from None
        if answer.status_code not in ok:
            text = " ".join(answer.text.split())[:300].replace(token, "***")
            hint = (
                " The token is missing or wrong: use the server's (its folder's `token` file)."
                if answer.status_code in (401, 403)
                else ""
            )
            raise PublishError(
                f"{method} {path} on {self.url} answered {answer.status_code}: {text}.{hint}"
            )
        return answer

    def push(self, collection: pystac.Collection, *, prune: bool = False) -> list[str]:
        """Send a collection and its items (as written in a static catalog) to the API.

        Parameters
        ----------
        collection
            A collection read from (or just written to) a static catalog.
        prune
            Also delete the API's items of the collection that ``collection`` lacks.

        Returns
        -------
        list of str
            The ids of the items sent.

        Raises
        ------
        PublishError
            The API refused a request (401/403: the token) or cannot be reached.
        """
        cid = collection.id
        body = collection.to_dict(include_self_link=False, transform_hrefs=False)
        body["links"] = [ln for ln in body.get("links", []) if ln.get("rel") not in _SERVER_LINKS]
        answer = self._request("POST", "/collections", body, ok=(200, 201, 409))
        if answer.status_code == 409:
            self._request("PUT", f"/collections/{quote(cid, safe='')}", body)
        sent = []
        for item in collection.get_items(recursive=True):
            item = item.clone()
            if item.get_self_href():
                item.make_asset_hrefs_absolute()
            data = item.to_dict(include_self_link=False, transform_hrefs=False)
            data["collection"] = cid
            data["links"] = [
                ln
                for ln in data.get("links", [])
                if ln.get("rel") not in _SERVER_LINKS and "://" in str(ln.get("href", ""))
            ]
            items = f"/collections/{quote(cid, safe='')}/items"
            answer = self._request("POST", items, data, ok=(200, 201, 409))
            if answer.status_code == 409:
                self._request("PUT", f"{items}/{quote(item.id, safe='')}", data)
            sent.append(item.id)
        if prune:
            for stale in sorted(set(self._item_ids(cid)) - set(sent)):
                self._request(
                    "DELETE",
                    f"/collections/{quote(cid, safe='')}/items/{quote(stale, safe='')}",
                    ok=(200, 204, 404),
                )
        return sent

    def _item_ids(self, cid: str) -> list[str]:
        ids: list[str] = []
        url: str | None = f"/collections/{quote(cid, safe='')}/items?limit=1000&fields=id"
        while url:
            page = self._request("GET", url).json()
            ids += [f["id"] for f in page.get("features", [])]
            nxt = [ln["href"] for ln in page.get("links", []) if ln.get("rel") == "next"]
            url = nxt[0].replace(self.url.rstrip("/"), "", 1) if nxt else None
        return ids

    def publish(
        self, product: Product, *, collection: str | None = None, overwrite: bool = False
    ) -> pystac.Collection:
        """Write the product into the store, then send it to the API.

        Parameters
        ----------
        product
            Any :class:`~mus_lab.publish.Product`.
        collection
            Collection id (default: the product's).
        overwrite
            Replace the store's collection, and delete the API's items of that collection
            the new product does not have. Publishing again with ``overwrite=True``
            leaves one item per item id; if the API was down after the store was
            written, :meth:`push` of the returned collection sends it again.

        Returns
        -------
        pystac.Collection
            As the store holds it.

        Raises
        ------
        PublishError
            The product cannot be written, or the API refused it.
        """
        written = self.store.publish(product, collection=collection, overwrite=overwrite)
        self.push(written, prune=overwrite)
        return written

    def open(self, kind: type[P], collection: str | None = None, **kwargs: Any) -> P:
        """Open a product from the store (the API holds the same items).

        Parameters
        ----------
        kind
            The product class.
        collection
            Collection id (default: the kind's).
        **kwargs
            Reader options.

        Returns
        -------
        Product
        """
        return self.store.open(kind, collection, **kwargs)
