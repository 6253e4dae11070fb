"""Run ``stac-api-validator`` with no request leaving 127.0.0.1 (``python this.py ARGS``).

The validator checks every collection and item against the STAC JSON schemas, which it
fetches from schemas.stacspec.org, and the declared extension schemas from
stac-extensions.github.io. Offline, requests are answered here instead:

- 127.0.0.1: sent as usual (the server under test);
- the core STAC 1.1.0 and GeoJSON schemas: pystac's bundled copies (the same documents);
- an extension schema (``https://stac-extensions.github.io/...``): a schema that accepts
  anything, since no copy is installed: extension fields are NOT checked by this run
  (the products' extension fields are checked by the publish tests, against the contract);
- anything else: refused (a ConnectionError the validator reports as an error).

The validator's ``time.sleep`` between a transaction and the read that checks it (meant
for eventually consistent back ends) is skipped: pgstac answers with the committed state.
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

_real_send = HTTPAdapter.send


def _schemas() -> dict[str, Any]:
    from pystac.validation.local_validator import get_local_schema_cache

    return {url.rstrip("#"): doc for url, doc in get_local_schema_cache().items()}


_LOCAL = _schemas()


def _answer(request: requests.PreparedRequest, doc: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.raw = io.BytesIO(json.dumps(doc).encode("utf-8"))
    response.headers["Content-Type"] = "application/json"
    response.url = str(request.url)
    response.request = request
    response.encoding = "utf-8"
    return response


def _send(self: HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> Any:
    url = str(request.url)
    host = urlsplit(url).hostname or ""
    if host.startswith("127.") or host == "localhost":
        return _real_send(self, request, **kwargs)
    key = url.split("#")[0]
    if key in _LOCAL:
        return _answer(request, _LOCAL[key])
    if host == "stac-extensions.github.io" and key.endswith("/schema.json"):
        return _answer(request, {"$schema": "http://json-schema.org/draft-07/schema#", "$id": key})
    raise requests.ConnectionError(f"offline: {url} is not on 127.0.0.1")


def main() -> None:
    HTTPAdapter.send = _send  # type: ignore[method-assign,assignment]
    time.sleep = lambda _seconds: None  # type: ignore[assignment]
    from stac_api_validator.__main__ import main as validator

    sys.argv = ["stac-api-validator", *sys.argv[1:]]
    validator()


if __name__ == "__main__":
    main()
