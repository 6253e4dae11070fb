"""A local replay server for the providers: recorded real answers, offline, on 127.0.0.1.

Every real host is served under its own path prefix, ``http://127.0.0.1:<port>/<host>/...``,
and every absolute URL of those hosts in an answer is rewritten to the server, so next
links page through it. :meth:`ReplayServer.env` gives the ``MUS_LAB_PROVIDER_*_URL``
variables (and test credentials) that point :func:`mus_lab.catalog.search` at it.

What is served, and where it comes from (``<real_data>`` = the shared data folder):

- Earth Search v1 and Planetary Computer STAC: the pystac-client cassettes
  (``stac_real_responses/pystac_client_cassettes_json``), answered only for a request
  equal to a recorded one (method, path, query, JSON body); others get 404.
- CDSE OData ``/odata/v1/Products``: the two real products of
  ``eodag_provider_responses/cop_dataspace_search.json``. The recording has one page and a
  ``@odata.nextLink`` to an unrecorded second one, so the paging is **reconstructed**:
  pages of ``$top`` products from ``$skip``, the next link in the recorded form. Products
  whose collection or ``productType`` the ``$filter`` excludes are left out.
- CDSE resto OpenSearch ``/resto/api/collections/<C>/search.json``: no recorded feed
  exists, so the features are **reconstructed from the OData products** (same ids,
  footprints, dates, attributes) in the resto GeoJSON shape, paged by ``maxRecords`` /
  ``page`` with a ``next`` link.
- EODMS STAC ``/search``: ``rcm-ard`` items **reconstructed** from the outputs of the
  executed notebook ``rcm-ard-stac-examples/rcm_ard_stac_example.ipynb`` (ids, order keys,
  dates, orbits, processing versions, asset keys, titles, roles and href pattern; the
  footprint is not in the outputs: a box around the notebook's Ottawa AOI); the four real
  items of ``eodms-cli/test6_output.geojson`` (three ``RCMImageProducts``, one
  ``Radarsat2``; a ``product:type = '...'`` filter is applied, no other); queryables parsed from
  the eodms-cli README. Tokens are base64 of the last item's datetime (as the real ones)
  and id (two items share a datetime).
  ``RCMImageProducts`` behaves like the EODMS server of the README: its second page
  repeats its own page token (``repeat_token``).
- EODMS AAA (``/aaa/v1/login``, ``/aaa/v1/refresh``) and CDSE Keycloak token endpoints:
  issue, refresh and expire tokens; 401 with an expired or unknown token.
- EODMS DDS ``/dds/v1/item/EODMS/<collection>/<uuid>``: HTTP 202 with the recorded
  ``ItemsRestoring`` body (its ``suggested_retry_interval`` replaced by
  ``retry_interval``) for the first ``pending_polls`` calls, then 200 with a
  ``download_url`` on this server.
- CDSE downloads (``download.dataspace.copernicus.eu/odata/v1/Products(<id>)/$value``,
  bearer required) and ``/files/<name>``: small bodies for the tests' own downloads.
- Planetary Computer SAS ``/api/sas/v1/token/<collection>``: a fresh fake token with
  ``msft:expiry`` ``sas_lifetime`` seconds ahead.

Usage::

    with ReplayServer() as server, patched_env(server.env()):
        result = search("eodms", collections="rcm-ard")
"""

from __future__ import annotations

import ast
import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from mus_lab.catalog._access import clear_access

__all__ = ["ReplayServer", "TokenState"]

EARTH_SEARCH = "earth-search.aws.element84.com"
PC = "planetarycomputer.microsoft.com"
CDSE_CATALOGUE = "catalogue.dataspace.copernicus.eu"
CDSE_DOWNLOAD = "download.dataspace.copernicus.eu"
CDSE_IDENTITY = "identity.dataspace.copernicus.eu"
CDSE_STAC = "stac.dataspace.copernicus.eu"
EODMS = "www.eodms-sgdot.nrcan-rncan.gc.ca"
EODMS_BARE = "eodms-sgdot.nrcan-rncan.gc.ca"
KEYCLOAK_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
#: The stand-in body of every CDSE download.
CDSE_BODY = b"PK\x03\x04 replay product body\n" * 16


def _file_body(name: str) -> bytes:
    """The stand-in body served at ``/files/<name>``."""
    return f"mus-lab replay file {name}\n".encode() * 8


#: Hosts whose absolute URLs are rewritten to the server.
HOSTS = (EARTH_SEARCH, PC, CDSE_CATALOGUE, CDSE_DOWNLOAD, CDSE_IDENTITY, CDSE_STAC, EODMS)


@dataclass
class TokenState:
    """Tokens the server issued: value -> (provider, kind, expiry in server time)."""

    tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict)

    def issue(self, provider: str, kind: str, lifetime: float, now: float) -> str:
        value = f"{provider}-{kind}-{secrets.token_hex(12)}"
        self.tokens[value] = (provider, kind, now + lifetime)
        return value

    def valid(self, value: str, provider: str, kind: str, now: float) -> bool:
        entry = self.tokens.get(value)
        return entry is not None and entry[:2] == (provider, kind) and now < entry[2]


def _between(text: str, name: str) -> Any:
    """The ``array([...])`` printed after coordinate ``name`` in the xarray HTML repr text."""
    start = text.index(f" {name} (")
    arr = text.index("array(", start) + len("array(")
    depth, end = 0, arr
    for end in range(arr, len(text)):
        depth += {"[": 1, "]": -1, "{": 1, "}": -1}.get(text[end], 0)
        if depth == 0 and text[end] in "]}":
            break
        if depth == 0 and text[end] in "',0123456789":
            # a scalar: up to the closing parenthesis or the ', dtype'
            stop = min(i for i in (text.find(", dtype", arr), text.find(")", arr)) if i > 0)
            return ast.literal_eval(text[arr:stop])
    return ast.literal_eval(text[arr : end + 1])


def _notebook_text(path: Path) -> tuple[str, list[tuple[str, str, list[str] | None]]]:
    """Plain text of the stack repr (cell 15) and the asset table (cell 11) of the notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    stack_html = table = ""
    for cell in nb["cells"]:
        for out in cell.get("outputs", ()):
            data = out.get("data", {})
            page = "".join(data.get("text/html", ""))
            plain = "".join(data.get("text/plain", ""))
            if "stackstac-" in page and "order_key" in page:
                stack_html = page
            if "Asset Key" in plain:
                table = plain
    text = re.sub(r"<style.*?</style>", "", stack_html, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    text = re.sub(r"\s+", " ", text)
    text = text[text.rindex("Coordinates: (") :]  # the detailed part, with the arrays
    assets = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if len(cells) == 3 and cells[0] and not cells[0].startswith(("Asset", "━", "─")):
            roles = ast.literal_eval(cells[2]) if cells[2].startswith("[") else None
            assets.append((cells[0], cells[1], roles))
        elif len(cells) == 3 and not cells[0] and assets and cells[1]:
            key, title, roles = assets[-1]
            assets[-1] = (key, f"{title} {cells[1]}", roles)
    return text, assets


# rcm-ard file names: RR/RL/RRRL/bitmask/quickLook from the notebook outputs, the others
# from the ARD product listing of the eodms-cli README.
_ARD_FILES = {
    "rr": "RR.tif", "rl": "RL.tif", "rrrl": "RRRL.tif", "data_mask": "bitmask.tif",
    "rl_thumbnail": "RL_quickLook.tif", "rr_thumbnail": "RR_quickLook.tif",
    "local_inc_angle": "localIncAngle.tif", "gamma_to_sigma_ratio": "gammaToSigmaRatio.tif",
    "local_contributing_area": "localContributingArea.tif", "metadata": "product.xml",
    "thumbnail": "quickLook.png", "eula_license": "RCM_EULA_GC_v3-1_20210202_UNCLASSIFIED.pdf",
}  # fmt: skip
_OTTAWA = (-76.3, 45.0, -75.1, 45.8)  # around the notebook's AOI (-75.97, 45.23, -75.43, 45.52)


def rcm_ard_items(notebook: Path) -> list[dict[str, Any]]:
    """Reconstruct the 21 ``rcm-ard`` STAC items of the executed EODMS notebook.

    Parameters
    ----------
    notebook
        ``rcm_ard_stac_example.ipynb``.

    Returns
    -------
    list of dict
        STAC item JSON, newest first (the order of the notebook's search output).
    """
    text, assets = _notebook_text(notebook)
    per_time = {
        name: _between(text, name)
        for name in (
            "id", "order_key", "start_datetime", "end_datetime", "rcm_uuid", "created",
            "sat:relative_orbit", "sat:absolute_orbit", "sat:orbit_state", "ard_proc_version",
            "sequence_id", "processing:software",
        )
    }  # fmt: skip
    constants = {
        name: _between(text, name)
        for name in (
            "product_row_spacing", "product_column_spacing", "processing:level",
            "ceosard:specification", "ceosard:type", "ceosard:specification_version",
            "sar:observation_direction", "sar:pixel_spacing_azimuth", "sar:pixel_spacing_range",
            "processing:facility", "sar:looks_azimuth", "sar:looks_range", "version",
            "sar:frequency_band", "sar:product_type", "sar:center_frequency",
            "sar:instrument_mode",
        )
    }  # fmt: skip
    w, s, e, n = _OTTAWA
    geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    items = []
    for i, item_id in enumerate(per_time["id"]):
        key = per_time["order_key"][i]
        stem = key.removesuffix("_CH_CV_MLC")
        day = key.split("_")[5]
        folder = (
            f"https://rcm-ceos-ard.s3.ca-central-1.amazonaws.com/MLC/{day[:4]}/{day[4:6]}/"
            f"{day[6:]}/{key}"
        )
        props: dict[str, Any] = {name: per_time[name][i] for name in per_time if name != "id"}
        props.update(constants)
        props["datetime"] = props["start_datetime"] + "Z"
        props["start_datetime"] += "Z"
        props["end_datetime"] += "Z"
        props["title"] = key
        props["sar:polarizations"] = ["CH", "CV", "XC"]
        props["proj:code"] = "EPSG:32618"
        item_assets = {}
        for asset_key, title, roles in assets:
            name = _ARD_FILES.get(asset_key, f"{asset_key}.tif")
            sep = "" if name.startswith("RCM_EULA") else f"{stem}_"
            entry: dict[str, Any] = {"href": f"{folder}/{sep}{name}", "title": title}
            if roles:
                entry["roles"] = roles
            if name.endswith(".tif"):
                entry["type"] = "image/tiff; application=geotiff; profile=cloud-optimized"
            item_assets[asset_key] = entry
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": item_id,
                "collection": "rcm-ard",
                "geometry": geometry,
                "bbox": [w, s, e, n],
                "properties": props,
                "assets": item_assets,
                "links": [],
            }
        )
    return sorted(items, key=lambda it: it["properties"]["start_datetime"], reverse=True)


def _queryables(readme: Path) -> dict[str, Any]:
    """JSON Schema of the RCMImageProducts queryables listed in the eodms-cli README."""
    props: dict[str, Any] = {}
    for match in re.finditer(
        r"^\s+\* (\S+) \(([\w-]+)\) e\.g\..*?(?:constraints: (.*))?$",
        readme.read_text(encoding="utf-8"),
        re.M,
    ):
        name, kind, constraints = match.groups()
        schema: dict[str, Any] = {"type": kind}
        if constraints and constraints.startswith("enum=["):
            schema["enum"] = [v.strip() for v in constraints[6:].rstrip("]").split(",")]
        props[name] = schema
    return {"type": "object", "properties": props}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class ReplayServer:
    """Serve recorded provider answers on ``127.0.0.1`` (free port) from a daemon thread.

    Parameters
    ----------
    data
        The shared real-data folder (default: the ``real_data`` setting).
    access_lifetime, refresh_lifetime
        Seconds an issued access / refresh token stays valid (server time).
    sas_lifetime
        Seconds a SAS token stays valid.
    pending_polls
        DDS calls answered 202 for each product before it is ready.
    retry_interval
        ``suggested_retry_interval`` of those 202 answers.
    stand_in_sizes
        Rewrite the recorded ``ContentLength`` and ``Checksum`` (MD5) of the CDSE products to
        those of the small stand-in body this server sends, so that a harvest through it
        completes and verifies (the recorded sizes are hundreds of MB).

    Attributes
    ----------
    requests
        ``(method, path, query)`` of every request (``path`` without the host prefix).
    users
        Provider -> (username, password) the token endpoints accept.
    """

    users: ClassVar[dict[str, tuple[str, str]]] = {
        "cdse": ("alice@example.org", "replay-cdse-password"),
        "eodms": ("bob", "replay-eodms-password"),
    }

    def __init__(
        self,
        data: str | Path | None = None,
        *,
        access_lifetime: float = 600.0,
        refresh_lifetime: float = 3600.0,
        sas_lifetime: float = 3600.0,
        pending_polls: int = 1,
        retry_interval: float = 0.01,
        stand_in_sizes: bool = False,
    ) -> None:
        if data is None:
            from mus_lab._settings import get_settings

            data = get_settings().real_data
        self.data = Path(data)
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.sas_lifetime = sas_lifetime
        self.pending_polls = pending_polls
        self.retry_interval = retry_interval
        self.stand_in_sizes = stand_in_sizes
        self.state = TokenState()
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.dds_calls: dict[str, int] = {}
        self._offset = 0.0
        self._httpd: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._load()

    # --- data ------------------------------------------------------------------------------
    def _load(self) -> None:
        stac = self.data / "stac_real_responses"
        eodms = self.data / "eodms_real_responses"
        self.cassette: list[tuple[str, str, dict[str, list[str]], Any, int, Any]] = []
        for path in sorted((stac / "pystac_client_cassettes_json").glob("*.json")):
            for i in json.loads(path.read_text(encoding="utf-8"))["interactions"]:
                parts = urlsplit(i["uri"])
                body = i["request_body"]
                body = json.loads(body) if isinstance(body, str | bytes) and body else body or None
                status = i["status"]["code"] if isinstance(i["status"], dict) else i["status"]
                self.cassette.append(
                    (
                        i["method"].upper(),
                        f"/{parts.netloc}{parts.path.rstrip('/')}",
                        parse_qs(parts.query),
                        body,
                        int(status),
                        i["response_json"],
                    )
                )
        odata = json.loads(
            (stac / "eodag_provider_responses" / "cop_dataspace_search.json").read_text("utf-8")
        )
        self.products: list[dict[str, Any]] = list(odata["value"])
        if self.stand_in_sizes:
            digest = hashlib.md5(CDSE_BODY).hexdigest()
            self.products = [
                dict(
                    p,
                    ContentLength=len(CDSE_BODY),
                    Checksum=[{"Value": digest, "Algorithm": "MD5"}],
                )
                for p in self.products
            ]
        self.odata_context = odata["@odata.context"]
        self.rcm_ard = rcm_ard_items(eodms / "rcm-ard-stac-examples" / "rcm_ard_stac_example.ipynb")
        test6 = json.loads((eodms / "eodms-cli" / "test6_output.geojson").read_text("utf-8"))
        # The CLI wrote each real STAC item as the properties of a GeoJSON feature.
        self.rcm_l1 = [
            {k: v for k, v in f["properties"].items() if k in _STAC_KEYS} for f in test6["features"]
        ]
        self.queryables = _queryables(eodms / "eodms-cli" / "README.md")
        restoring = json.loads(
            (eodms / "eodms-cli" / "20260216_155955_ItemsRestoring.json").read_text("utf-8")
        )
        self.restoring = restoring[0] if isinstance(restoring, list) else restoring

    # --- control ---------------------------------------------------------------------------
    def now(self) -> float:
        """Return the server time (``time.time()`` plus what :meth:`advance` added).

        Returns
        -------
        float
            Seconds since the epoch.
        """
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the server clock forward (tokens expire without waiting).

        Parameters
        ----------
        seconds
            How far.

        Returns
        -------
        None
        """
        self._offset += seconds

    def expire_tokens(self, kind: str = "access") -> None:
        """Expire every issued token of ``kind`` now.

        Parameters
        ----------
        kind
            ``"access"`` or ``"refresh"``.

        Returns
        -------
        None
        """
        with self._lock:
            for value, (prov, k, _exp) in list(self.state.tokens.items()):
                if k == kind:
                    self.state.tokens[value] = (prov, k, 0.0)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, real_url: str) -> str:
        """Return the local URL serving ``real_url``.

        Parameters
        ----------
        real_url
            A URL of a real service.

        Returns
        -------
        str
            ``http://127.0.0.1:<port>/<host>/<path>``.
        """
        parts = urlsplit(real_url)
        return f"{self.base}/{parts.netloc}{parts.path}" + (
            f"?{parts.query}" if parts.query else ""
        )

    def env(self, *, credentials: bool = True) -> dict[str, str]:
        """Return the environment variables pointing every provider at this server.

        Parameters
        ----------
        credentials
            Add the test credentials of :attr:`users` too.

        Returns
        -------
        dict
            ``MUS_LAB_PROVIDER_*_URL`` (and ``MUS_LAB_*_USERNAME`` / ``_PASSWORD``).
        """
        b = self.base
        env = {
            "MUS_LAB_PROVIDER_EARTH_SEARCH_URL": f"{b}/{EARTH_SEARCH}/v1",
            "MUS_LAB_PROVIDER_PLANETARY_COMPUTER_URL": f"{b}/{PC}/api/stac/v1",
            "MUS_LAB_PROVIDER_PLANETARY_COMPUTER_SAS_URL": f"{b}/{PC}/api/sas/v1/token",
            "MUS_LAB_PROVIDER_CDSE_URL": f"{b}/{CDSE_STAC}/v1",
            "MUS_LAB_PROVIDER_CDSE_ODATA_URL": f"{b}/{CDSE_CATALOGUE}/odata/v1",
            "MUS_LAB_PROVIDER_CDSE_OPENSEARCH_URL": f"{b}/{CDSE_CATALOGUE}/resto/api/collections",
            "MUS_LAB_PROVIDER_CDSE_DOWNLOAD_URL": f"{b}/{CDSE_DOWNLOAD}/odata/v1",
            "MUS_LAB_PROVIDER_CDSE_TOKEN_URL": f"{b}/{CDSE_IDENTITY}{KEYCLOAK_PATH}",
            "MUS_LAB_PROVIDER_EODMS_URL": f"{b}/{EODMS}/search",
            "MUS_LAB_PROVIDER_EODMS_SERVICES_URL": f"{b}/{EODMS}",
        }
        if credentials:
            for provider, (user, password) in self.users.items():
                env[f"MUS_LAB_{provider.upper()}_USERNAME"] = user
                env[f"MUS_LAB_{provider.upper()}_PASSWORD"] = password
        return env

    def start(self) -> ReplayServer:
        """Start serving (a free port on 127.0.0.1).

        Returns
        -------
        ReplayServer
            Itself.
        """
        clear_access()  # provider access objects read their URLs when made
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port."""
        clear_access()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- answers ---------------------------------------------------------------------------
    def _rewrite(self, payload: Any) -> bytes:
        text = json.dumps(payload)
        for host in HOSTS:
            text = text.replace(f"https://{host}", f"{self.base}/{host}")
        text = text.replace(f"https://{EODMS_BARE}", f"{self.base}/{EODMS}")
        return text.encode("utf-8")

    def _bearer(self, headers: Any, provider: str) -> bool:
        auth = headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ").strip()
        with self._lock:
            return self.state.valid(token, provider, "access", self.now())

    def _tokens(self, provider: str) -> dict[str, Any]:
        with self._lock:
            now = self.now()
            access = self.state.issue(provider, "access", self.access_lifetime, now)
            refresh = self.state.issue(provider, "refresh", self.refresh_lifetime, now)
        out: dict[str, Any] = {"access_token": access, "refresh_token": refresh,
                               "expires_in": self.access_lifetime, "token_type": "Bearer"}  # fmt: skip
        key = "refresh_expires_in" if provider == "cdse" else "refresh_token_expires_in"
        out[key] = self.refresh_lifetime
        return out

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, raw: bytes
    ) -> tuple[int, Any, str]:
        """Answer one request.

        Parameters
        ----------
        method, path, query, headers, raw
            The request: method, path (with the host prefix), parsed query, headers, body.

        Returns
        -------
        tuple
            (HTTP status, JSON payload or bytes, content type).
        """
        parts = path.split("/", 2)
        host, rest = (
            (parts[1], "/" + (parts[2] if len(parts) > 2 else "")) if len(parts) > 1 else ("", "/")
        )
        one = {k: v[0] for k, v in query.items()}
        if rest.startswith("/files/"):
            return 200, _file_body(rest[7:]), "application/octet-stream"
        if host == PC and rest.startswith("/api/sas/v1/token/"):
            exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now() + self.sas_lifetime))
            token = (
                f"st=2024-01-01&se={quote(exp)}&sp=rl&sv=2021-06-08&sr=c&sig={secrets.token_hex(8)}"
            )
            return 200, {"msft:expiry": exp, "token": token}, "application/json"
        if host in (EARTH_SEARCH, PC):
            return self._cassette(method, path, query, raw)
        if host == CDSE_IDENTITY and rest == KEYCLOAK_PATH and method == "POST":
            return self._keycloak(raw)
        if host == CDSE_CATALOGUE and rest.startswith("/odata/v1/Products"):
            return self._odata(one)
        if host == CDSE_CATALOGUE and rest.startswith("/resto/api/collections/"):
            return self._resto(rest.split("/")[4], one)
        if host == CDSE_DOWNLOAD and rest.endswith("/$value"):
            if not self._bearer(headers, "cdse"):
                return 401, {"detail": "Expired signature or invalid token"}, "application/json"
            return 200, CDSE_BODY, "application/zip"
        if host == EODMS and rest.startswith("/aaa/v1/"):
            return self._aaa(rest, headers, raw)
        if host == EODMS and rest.startswith("/dds/v1/item/"):
            return self._dds(rest, headers)
        if host == EODMS and rest.startswith("/search"):
            return self._eodms(rest.removeprefix("/search"), one)
        return 404, {"code": "NotRecorded", "method": method, "path": path}, "application/json"

    def _cassette(
        self, method: str, path: str, query: dict[str, list[str]], raw: bytes
    ) -> tuple[int, Any, str]:
        body = json.loads(raw) if raw else None
        for m, p, q, b, status, response in self.cassette:
            if (m, p, q, b) == (method, path.rstrip("/"), query, body):
                return status, response, "application/json"
        return 404, {"code": "NotRecorded", "path": path, "body": body}, "application/json"

    def _keycloak(self, raw: bytes) -> tuple[int, Any, str]:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("client_id") != "cdse-public":
            return 401, {"error": "invalid_client"}, "application/json"
        if form.get("grant_type") == "password":
            if (form.get("username"), form.get("password")) != self.users["cdse"]:
                return 401, {"error": "invalid_grant",
                             "error_description": "Invalid user credentials"}, "application/json"  # fmt: skip
            return 200, self._tokens("cdse"), "application/json"
        if form.get("grant_type") == "refresh_token":
            with self._lock:
                ok = self.state.valid(form.get("refresh_token", ""), "cdse", "refresh", self.now())
            if not ok:
                return 400, {"error": "invalid_grant",
                             "error_description": "Token is not active"}, "application/json"  # fmt: skip
            return 200, self._tokens("cdse"), "application/json"
        return 400, {"error": "unsupported_grant_type"}, "application/json"

    def _aaa(self, rest: str, headers: Any, raw: bytes) -> tuple[int, Any, str]:
        if rest == "/aaa/v1/login":
            body = json.loads(raw or b"{}")
            if (body.get("username"), body.get("password")) != self.users["eodms"]:
                return (
                    401,
                    {"error": "invalid_grant", "message": "Login failed"},
                    "application/json",
                )
            return 200, self._tokens("eodms"), "application/json"
        if rest == "/aaa/v1/refresh":
            token = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            with self._lock:
                ok = self.state.valid(token, "eodms", "refresh", self.now())
            if not ok:
                return (
                    401,
                    {"error": "invalid_token", "message": "Refresh token expired"},
                    "application/json",
                )
            return 200, self._tokens("eodms"), "application/json"
        return 404, {"code": "NotFound"}, "application/json"

    def _dds(self, rest: str, headers: Any) -> tuple[int, Any, str]:
        if not self._bearer(headers, "eodms"):
            return 401, {"error": "invalid_token"}, "application/json"
        collection, uuid = rest.split("/")[-2:]
        with self._lock:
            calls = self.dds_calls[uuid] = self.dds_calls.get(uuid, 0) + 1
        if calls <= self.pending_polls:
            body = dict(self.restoring)
            body.update(image_uuid=uuid, collection_id=collection,
                        suggested_retry_interval=self.retry_interval)  # fmt: skip
            return 202, [body], "application/json"
        url = f"https://{EODMS}/files/{uuid}.zip"
        size = len(_file_body(f"{uuid}.zip"))
        return 200, {"status": "Available", "download_url": url, "size": size,
                     "collection_id": collection, "image_uuid": uuid}, "application/json"  # fmt: skip

    def _odata(self, q: dict[str, str]) -> tuple[int, Any, str]:
        flt = q.get("$filter", "")
        wanted = []
        for product in self.products:
            attrs = {a["Name"]: a.get("Value") for a in product.get("Attributes", ())}
            coll = str(attrs.get("platformShortName", ""))
            if "Collection/Name eq '" in flt and f"Collection/Name eq '{coll}'" not in flt:
                continue
            ptype = re.search(
                r"Name eq 'productType' and att/OData\.CSC\.StringAttribute/Value eq '([^']+)'", flt
            )
            if ptype and ptype.group(1) != attrs.get("productType"):
                continue
            cloud = re.search(
                r"Name eq 'cloudCover' and att/OData\.CSC\.DoubleAttribute/Value le ([0-9.]+)", flt
            )
            if cloud and float(attrs.get("cloudCover", 0.0)) > float(cloud.group(1)):
                continue
            wanted.append(product)
        top, skip = int(q.get("$top", 20)), int(q.get("$skip", 0))
        page: dict[str, Any] = {
            "@odata.context": self.odata_context,
            "value": wanted[skip : skip + top],
        }
        if skip + top < len(wanted):
            nxt = dict(q, **{"$skip": str(skip + top)})
            page["@odata.nextLink"] = f"https://{CDSE_CATALOGUE}/odata/v1/Products?{urlencode(nxt)}"
        return 200, page, "application/json"

    def _resto(self, collection: str, q: dict[str, str]) -> tuple[int, Any, str]:
        features = []
        for product in self.products:
            attrs = {a["Name"]: a.get("Value") for a in product.get("Attributes", ())}
            if collection != f"Sentinel{str(attrs.get('platformShortName', ''))[-1:]}":
                continue
            if q.get("productType") and q["productType"] != attrs.get("productType"):
                continue
            features.append(
                {
                    "type": "Feature",
                    "id": product["Id"],
                    "geometry": product["GeoFootprint"],
                    "properties": {
                        "collection": attrs.get("platformShortName"),
                        "title": product["Name"],
                        "startDate": product["ContentDate"]["Start"],
                        "completionDate": product["ContentDate"]["End"],
                        "productType": attrs.get("productType"),
                        "cloudCover": attrs.get("cloudCover"),
                        "platform": attrs.get("platformSerialIdentifier"),
                        "orbitNumber": attrs.get("orbitNumber"),
                        "relativeOrbitNumber": attrs.get("relativeOrbitNumber"),
                        "orbitDirection": attrs.get("orbitDirection"),
                        "services": {
                            "download": {
                                "url": f"https://{CDSE_DOWNLOAD}/odata/v1/Products({product['Id']})/$value",
                                "mimeType": "application/zip",
                                "size": product.get("ContentLength"),
                            }
                        },
                    },
                }
            )
        per, page = int(q.get("maxRecords", 20)), int(q.get("page", 1))
        chunk = features[(page - 1) * per : page * per]
        links = [
            {
                "rel": "self",
                "href": f"https://{CDSE_CATALOGUE}/resto/api/collections/{collection}/search.json?{urlencode(q)}",
            }
        ]
        if page * per < len(features):
            nxt = dict(q, page=str(page + 1))
            links.append({"rel": "next", "type": "application/json", "title": "next",
                          "href": f"https://{CDSE_CATALOGUE}/resto/api/collections/{collection}/search.json?{urlencode(nxt)}"})  # fmt: skip
        props = {
            "totalResults": len(features),
            "itemsPerPage": per,
            "startIndex": (page - 1) * per + 1,
            "links": links,
        }
        return (
            200,
            {"type": "FeatureCollection", "properties": props, "features": chunk},
            "application/json",
        )

    def _eodms(self, rest: str, q: dict[str, str]) -> tuple[int, Any, str]:
        root = f"https://{EODMS}/search"
        collections: dict[str, list[dict[str, Any]]] = {"rcm-ard": self.rcm_ard}
        for item in self.rcm_l1:
            collections.setdefault(item["collection"], []).append(item)
        if rest in ("", "/"):
            return 200, {"type": "Catalog", "id": "eodms-stac", "stac_version": "1.0.0",
                         "description": "EODMS STAC (replay)", "links": [
                             {"rel": "self", "href": root}, {"rel": "data", "href": f"{root}/collections"}],
                         "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                                        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text"]}, "application/json"  # fmt: skip
        if rest == "/collections":
            return (
                200,
                {"collections": [{"id": c, "type": "Collection"} for c in collections]},
                "application/json",
            )
        m = re.fullmatch(r"/collections/([^/]+)/(items|queryables)", rest)
        if not m or m.group(1) not in collections:
            return (
                404,
                {"code": "NotFound", "description": f"Collection {rest} not found"},
                "application/json",
            )
        name, what = m.groups()
        if what == "queryables":
            return 200, self.queryables, "application/json"
        items = collections[name]
        ptype = re.search(r"product:type\"? = '([^']+)'", q.get("filter", ""))
        if ptype:  # the one filter the replay applies (the rcm-grd route)
            items = [i for i in items if i["properties"].get("product:type") == ptype.group(1)]
        limit = int(q.get("limit", 10))
        token = q.get("token")
        start = 0
        if token:
            when = base64.b64decode(unquote(token)).decode()
            start = next(
                (
                    i + 1
                    for i, it in enumerate(items)
                    if f"{it['properties']['datetime']},{it['id']}" == when
                ),
                len(items),
            )
        page = items[start : start + limit]
        links = [{"rel": "self", "href": f"{root}{rest}"}]
        more = start + limit < len(items)
        if name == "RCMImageProducts" and token:
            # Like the EODMS server of the eodms-cli README: the next page repeats the token.
            links.append({"rel": "next", "href": f"{root}{rest}?{urlencode(dict(q, token=token))}"})
        elif more and page:
            last = page[-1]
            nxt = dict(q, token=_b64(f"{last['properties']['datetime']},{last['id']}"))
            links.append({"rel": "next", "href": f"{root}{rest}?{urlencode(nxt)}"})
        body = {"type": "FeatureCollection", "features": page, "links": links,
                "numberReturned": len(page)}  # fmt: skip
        return 200, body, "application/json"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.requests.append((method, parts.path, query))
                try:
                    status, payload, ctype = server.answer(
                        method, parts.path, query, self.headers, raw
                    )
                except Exception as exc:  # a broken replay must show, not hang the client
                    status, payload, ctype = 500, {"error": repr(exc)}, "application/json"
                data = payload if isinstance(payload, bytes) else server._rewrite(payload)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def paths(self, host: str) -> Iterator[tuple[str, dict[str, list[str]]]]:
        """Yield the requests made to ``host``.

        Parameters
        ----------
        host
            A real host name, e.g. ``www.eodms-sgdot.nrcan-rncan.gc.ca``.

        Yields
        ------
        tuple of (str, dict)
            Path after the host, parsed query.
        """
        prefix = f"/{host}"
        for _method, path, query in self.requests:
            if path.startswith(prefix):
                yield path[len(prefix) :], query


_STAC_KEYS = frozenset(
    {"type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "properties",
     "links", "assets", "collection"}
)  # fmt: skip
