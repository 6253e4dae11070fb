"""Credentials and tokens of the data providers, kept out of logs, reprs and messages.

Where credentials come from, first found wins:

1. environment variables ``MUS_LAB_<PROVIDER>_USERNAME`` / ``MUS_LAB_<PROVIDER>_PASSWORD``
   (``MUS_LAB_CDSE_USERNAME``, ``MUS_LAB_EODMS_PASSWORD``...);
2. ``~/.netrc`` (or ``$NETRC``), the ``machine`` being the provider's login host;
3. a TOML file, ``$MUS_LAB_CREDENTIALS_FILE`` or ``~/.config/mus_lab/credentials.toml``,
   with one table per provider (``[cdse]`` ``username = "..."`` ``password = "..."``).
   It must be readable by its owner only (``chmod 600``), else :class:`CredentialsError`.

Tokens:

- :class:`OAuth2PasswordTokens`: an OpenID Connect password grant and ``refresh_token``
  grant (CDSE's Keycloak, client ``cdse-public``).
- :class:`EodmsTokens`: the EODMS AAA API, ``POST <origin>/aaa/v1/login`` with a JSON body
  ``{"grant_type": "password", "username", "password"}`` and ``GET <origin>/aaa/v1/refresh``
  with the refresh token as bearer; both answer ``access_token``, ``refresh_token``,
  ``expires_in`` and ``refresh_token_expires_in``. The paths are those of the eodms-py
  client (its AAA module); the shared recordings show the flow (refresh, log in again
  when the refresh token has expired) but not the paths.
- :class:`SasTokens`: Planetary Computer SAS tokens per collection
  (``GET .../api/sas/v1/token/{collection}`` -> ``{"token", "msft:expiry"}``).

All renew a token ``skew`` seconds (60 by default) before it expires, and
:meth:`TokenSource.invalidate` forgets it after a 401 so that the next call renews it.
Every secret is a :class:`Secret`, whose ``repr`` and ``str`` are ``'***'``; the value is
only read with :meth:`Secret.reveal` where a request is built.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import netrc
import os
import stat
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from mus_lab._settings import get_settings
from mus_lab.errors import CatalogUnreachableError, CredentialsError

__all__ = [
    "Credentials",
    "EodmsTokens",
    "OAuth2PasswordTokens",
    "SasTokens",
    "Secret",
    "TokenSource",
    "find_credentials",
    "require_credentials",
]

log = logging.getLogger("mus_lab.catalog")

Clock = Callable[[], float]


class Secret:
    """A string that never shows itself: ``repr``, ``str`` and f-strings print ``'***'``.

    Parameters
    ----------
    value
        The secret text.

    Examples
    --------
    >>> s = Secret("hunter2")
    >>> s, str(s), f"{s}"
    (Secret('***'), '***', '***')
    >>> s.reveal()
    'hunter2'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)

    def reveal(self) -> str:
        """Return the secret text (only where a request is built).

        Returns
        -------
        str
            The value.
        """
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:  # constant time: no timing hint of the value
        return isinstance(other, Secret) and hmac.compare_digest(other._value, self._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # pickling would write the value: refuse
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Credentials:
    """A username and password, and where they were read (for error messages).

    Attributes
    ----------
    username
        The account name.
    password
        The password, as a :class:`Secret`.
    origin
        Where they came from: ``"environment"``, ``"~/.netrc"`` or the config file path.

    Examples
    --------
    >>> Credentials("ann", Secret("pw"), "environment")
    Credentials(username='ann', password=Secret('***'), origin='environment')
    """

    username: str
    password: Secret
    origin: str = "environment"


def _env_name(provider: str) -> str:
    return provider.upper().replace("-", "_")


def _config_file() -> Path:
    raw = os.environ.get("MUS_LAB_CREDENTIALS_FILE")
    if raw:
        return Path(raw).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mus_lab" / "credentials.toml"


def _from_file(provider: str, path: Path) -> Credentials | None:
    if not path.is_file():
        return None
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path} can be read by other users (mode {stat.S_IMODE(mode):o}): run "
            f"'chmod 600 {path}' so that only you can read your credentials."
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        # The parser's message may quote the line (a password): give only its position.
        line = getattr(exc, "lineno", None)
        where = f" at line {line}" if line else ""
        raise CredentialsError(
            f"{path} is not a readable TOML file{where}: fix it (one table per provider, "
            '[cdse] username = "..." password = "...").'
        ) from None
    entry = data.get(provider)
    if not isinstance(entry, Mapping) or "username" not in entry or "password" not in entry:
        return None
    return Credentials(str(entry["username"]), Secret(str(entry["password"])), str(path))


def _from_netrc(host: str) -> Credentials | None:
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        line = getattr(exc, "lineno", None)
        raise CredentialsError(
            f"{path} cannot be read{f' (line {line})' if line else ''}: fix it or remove the "
            f"entry for {host}."
        ) from None
    if entry is None or not entry[0] or entry[2] is None:
        return None
    return Credentials(entry[0], Secret(entry[2]), str(path))


def find_credentials(provider: str, *, host: str | None = None) -> Credentials | None:
    """Return the username and password of ``provider``, or ``None`` when none is configured.

    Parameters
    ----------
    provider
        Provider name (``"cdse"``, ``"eodms"``); the environment variables are
        ``MUS_LAB_<PROVIDER>_USERNAME`` and ``MUS_LAB_<PROVIDER>_PASSWORD``.
    host
        The login host, looked up as a ``machine`` in ``~/.netrc``.

    Returns
    -------
    Credentials or None
        The first found in the environment, ``~/.netrc`` and the config file.

    Raises
    ------
    CredentialsError
        The config file can be read by others, or a file cannot be parsed.

    Examples
    --------
    >>> import os
    >>> os.environ["MUS_LAB_DEMO_USERNAME"], os.environ["MUS_LAB_DEMO_PASSWORD"] = "ann", "pw"
    >>> find_credentials("demo")
    Credentials(username='ann', password=Secret('***'), origin='environment')
    >>> del os.environ["MUS_LAB_DEMO_USERNAME"], os.environ["MUS_LAB_DEMO_PASSWORD"]
    """
    name = _env_name(provider)
    user = os.environ.get(f"MUS_LAB_{name}_USERNAME")
    password = os.environ.get(f"MUS_LAB_{name}_PASSWORD")
    if user and password:
        return Credentials(user, Secret(password), "environment")
    if host:
        found = _from_netrc(host)
        if found is not None:
            return found
    return _from_file(provider, _config_file())


def require_credentials(provider: str, *, host: str | None = None) -> Credentials:
    """Return the credentials of ``provider`` or say how to give them.

    Parameters
    ----------
    provider
        Provider name (``"cdse"``, ``"eodms"``).
    host
        Its login host (the ``~/.netrc`` machine).

    Returns
    -------
    Credentials
        The credentials found.

    Raises
    ------
    CredentialsError
        None configured (the message lists the three ways to give them).

    Examples
    --------
    >>> require_credentials("nobody-here")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mus_lab.errors.CredentialsError: No credentials for 'nobody-here': set MUS_LAB_NOBODY_HERE_USERNAME...
    """
    found = find_credentials(provider, host=host)
    if found is None:
        name = _env_name(provider)
        netrc_hint = f", a 'machine {host}' entry in ~/.netrc" if host else ""
        raise CredentialsError(
            f"No credentials for {provider!r}: set MUS_LAB_{name}_USERNAME and "
            f"MUS_LAB_{name}_PASSWORD{netrc_hint}, or a [{provider}] table in "
            f"{_config_file()} (mode 600)."
        )
    return found


@dataclass
class _Token:
    access: Secret
    expires_at: float
    refresh: Secret | None = None
    refresh_expires_at: float = 0.0


def _post_or_get(
    session: requests.Session, method: str, url: str, what: str, **kwargs: Any
) -> requests.Response:
    try:
        return session.request(method, url, timeout=get_settings().http_timeout, **kwargs)
    except requests.RequestException as exc:
        # The exception text holds the URL only (no body): safe to show.
        raise CatalogUnreachableError(
            f"Cannot reach the {what} at {url} ({type(exc).__name__}): check the network "
            "or the provider URL setting."
        ) from None


class TokenSource:
    """A bearer token renewed before it expires and after a 401.

    Subclasses implement :meth:`_login` and :meth:`_refresh`. Thread-safe: several
    download workers share one source.

    Parameters
    ----------
    skew
        Renew this many seconds before the announced expiry.
    clock
        Returns the current time in seconds (``time.time``; tests pass a fake one).
    session
        The HTTP session (a new one when ``None``).
    """

    what = "token service"

    def __init__(
        self,
        *,
        skew: float = 60.0,
        clock: Clock = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.skew = skew
        self.clock = clock
        self.session = session if session is not None else requests.Session()
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self.logins = 0
        self.refreshes = 0

    def __repr__(self) -> str:
        state = "no token" if self._token is None else "token held"
        return f"<{type(self).__name__} ({state})>"

    def token(self) -> Secret:
        """Return a valid access token, logging in or refreshing when needed.

        Returns
        -------
        Secret
            The access token.

        Raises
        ------
        CredentialsError
            The provider refused the credentials.
        CatalogUnreachableError
            The token service cannot be reached.
        """
        with self._lock:
            now = self.clock()
            tok = self._token
            if tok is not None and now < tok.expires_at - self.skew:
                return tok.access
            if (
                tok is not None
                and tok.refresh is not None
                and now < tok.refresh_expires_at - self.skew
            ):
                new = self._refresh(tok.refresh)
                if new is not None:
                    self.refreshes += 1
                    log.debug("%s: access token refreshed", type(self).__name__)
                    self._token = new
                    return new.access
            self._token = self._login()
            self.logins += 1
            log.debug("%s: logged in", type(self).__name__)
            return self._token.access

    def headers(self) -> dict[str, str]:
        """Return the ``Authorization: Bearer`` header (a fresh token).

        Returns
        -------
        dict
            One header.
        """
        return {"Authorization": f"Bearer {self.token().reveal()}"}

    def invalidate(self) -> None:
        """Forget the access token (after a 401); the refresh token is kept.

        Returns
        -------
        None
        """
        with self._lock:
            if self._token is not None:
                self._token.expires_at = 0.0

    def _login(self) -> _Token:
        raise NotImplementedError

    def _refresh(self, refresh: Secret) -> _Token | None:
        raise NotImplementedError

    def _expiry(self, seconds: Any, default: float) -> float:
        try:
            return self.clock() + float(seconds)
        except (TypeError, ValueError):
            return self.clock() + default

    def _json(self, resp: requests.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not data.get("access_token"):
            raise CredentialsError(
                f"The {self.what} answered HTTP {resp.status_code} without an access token: "
                "check the provider's token URL setting."
            )
        return data


class OAuth2PasswordTokens(TokenSource):
    """OpenID Connect password grant + refresh token (CDSE's Keycloak).

    Parameters
    ----------
    token_url
        The token endpoint, e.g.
        ``https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token``.
    credentials
        Username and password.
    client_id
        The public client (``cdse-public``).
    provider
        Provider name, for messages.
    **kwargs
        ``skew``, ``clock``, ``session`` of :class:`TokenSource`.

    Examples
    --------
    >>> src = OAuth2PasswordTokens("http://127.0.0.1:9/token", Credentials("ann", Secret("pw")))
    >>> src
    <OAuth2PasswordTokens (no token)>
    """

    what = "OAuth2 token endpoint"

    def __init__(
        self,
        token_url: str,
        credentials: Credentials,
        *,
        client_id: str = "cdse-public",
        provider: str = "cdse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.token_url = token_url
        self.credentials = credentials
        self.client_id = client_id
        self.provider = provider

    def _parse(self, data: Mapping[str, Any]) -> _Token:
        refresh = data.get("refresh_token")
        return _Token(
            access=Secret(data["access_token"]),
            expires_at=self._expiry(data.get("expires_in"), 600),
            refresh=Secret(refresh) if refresh else None,
            refresh_expires_at=self._expiry(data.get("refresh_expires_in"), 0),
        )

    def _login(self) -> _Token:
        form = {
            "grant_type": "password",
            "username": self.credentials.username,
            "password": self.credentials.password.reveal(),
            "client_id": self.client_id,
        }
        resp = _post_or_get(self.session, "POST", self.token_url, self.what, data=form)
        if resp.status_code in (400, 401, 403):
            raise CredentialsError(
                f"{self.provider} refused the username and password of "
                f"{self.credentials.username!r} (read from {self.credentials.origin}; HTTP "
                f"{resp.status_code}): check them, e.g. MUS_LAB_{_env_name(self.provider)}_USERNAME "
                f"and MUS_LAB_{_env_name(self.provider)}_PASSWORD. Nothing was downloaded."
            )
        if resp.status_code >= 300:
            raise CatalogUnreachableError(
                f"The {self.what} of {self.provider} answered HTTP {resp.status_code}: try "
                "again later."
            )
        return self._parse(self._json(resp))

    def _refresh(self, refresh: Secret) -> _Token | None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh.reveal(),
            "client_id": self.client_id,
        }
        resp = _post_or_get(self.session, "POST", self.token_url, self.what, data=form)
        if resp.status_code >= 300:
            return None  # expired or revoked: log in again
        return self._parse(self._json(resp))


class EodmsTokens(TokenSource):
    """EODMS AAA tokens: log in, refresh with the refresh token, log in again when it expired.

    Parameters
    ----------
    origin
        The EODMS origin, e.g. ``https://www.eodms-sgdot.nrcan-rncan.gc.ca``; the paths
        ``/aaa/v1/login`` and ``/aaa/v1/refresh`` are appended (those of eodms-py).
    credentials
        Username and password.
    **kwargs
        ``skew``, ``clock``, ``session`` of :class:`TokenSource`.
    """

    what = "EODMS AAA API"

    def __init__(self, origin: str, credentials: Credentials, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.origin = origin.rstrip("/")
        self.credentials = credentials

    def _parse(self, data: Mapping[str, Any]) -> _Token:
        refresh = data.get("refresh_token")
        return _Token(
            access=Secret(data["access_token"]),
            expires_at=self._expiry(data.get("expires_in"), 3600),
            refresh=Secret(refresh) if refresh else None,
            refresh_expires_at=self._expiry(data.get("refresh_token_expires_in"), 0),
        )

    def _login(self) -> _Token:
        body = {
            "grant_type": "password",
            "username": self.credentials.username,
            "password": self.credentials.password.reveal(),
        }
        url = f"{self.origin}/aaa/v1/login"
        resp = _post_or_get(self.session, "POST", url, self.what, json=body)
        if resp.status_code in (400, 401, 403):
            raise CredentialsError(
                f"EODMS refused the username and password of {self.credentials.username!r} "
                f"(read from {self.credentials.origin}; HTTP {resp.status_code}): check them, "
                "e.g. MUS_LAB_EODMS_USERNAME and MUS_LAB_EODMS_PASSWORD. Nothing was downloaded."
            )
        if resp.status_code >= 300:
            raise CatalogUnreachableError(
                f"The EODMS AAA API answered HTTP {resp.status_code}: try again later."
            )
        return self._parse(self._json(resp))

    def _refresh(self, refresh: Secret) -> _Token | None:
        url = f"{self.origin}/aaa/v1/refresh"
        headers = {"Authorization": f"Bearer {refresh.reveal()}"}
        resp = _post_or_get(self.session, "GET", url, self.what, headers=headers)
        if resp.status_code >= 300:
            return None
        return self._parse(self._json(resp))


@dataclass
class _Sas:
    token: Secret
    expires_at: float


@dataclass
class SasTokens:
    """Planetary Computer SAS tokens, one per collection, cached until shortly before expiry.

    Attributes
    ----------
    endpoint
        ``https://planetarycomputer.microsoft.com/api/sas/v1/token`` (``/{collection}`` is added).
    subscription_key
        Optional PC subscription key (``MUS_LAB_PC_SUBSCRIPTION_KEY``), sent as
        ``Ocp-Apim-Subscription-Key``.
    skew, clock
        Renew ``skew`` seconds before ``msft:expiry``; the time source.

    Examples
    --------
    >>> SasTokens("http://127.0.0.1:9/api/sas/v1/token")
    <SasTokens (0 cached)>
    """

    endpoint: str
    subscription_key: Secret | None = None
    skew: float = 60.0
    clock: Clock = time.time
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    requests_made: int = 0

    def __post_init__(self) -> None:
        self._cache: dict[str, _Sas] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SasTokens ({len(self._cache)} cached)>"

    def token(self, collection: str) -> Secret:
        """Return a valid SAS token (query string) for ``collection``.

        Parameters
        ----------
        collection
            The PC collection id.

        Returns
        -------
        Secret
            The token, e.g. ``st=...&se=...&sig=...``.

        Raises
        ------
        CredentialsError
            The token endpoint refused (a bad subscription key).
        CatalogUnreachableError
            It cannot be reached.
        """
        with self._lock:
            cached = self._cache.get(collection)
            if cached is not None and self.clock() < cached.expires_at - self.skew:
                return cached.token
            headers = {}
            if self.subscription_key:
                headers["Ocp-Apim-Subscription-Key"] = self.subscription_key.reveal()
            url = f"{self.endpoint.rstrip('/')}/{collection}"
            resp = _post_or_get(self.session, "GET", url, "Planetary Computer SAS endpoint",
                                headers=headers)  # fmt: skip
            self.requests_made += 1
            if resp.status_code in (401, 403):
                raise CredentialsError(
                    f"The Planetary Computer SAS endpoint refused a token for {collection!r} "
                    f"(HTTP {resp.status_code}): check MUS_LAB_PC_SUBSCRIPTION_KEY."
                )
            try:
                data = resp.json()
                token, expiry = data["token"], data["msft:expiry"]
                when = dt.datetime.fromisoformat(str(expiry).replace("Z", "+00:00"))
            except (ValueError, KeyError, TypeError):
                raise CatalogUnreachableError(
                    f"The Planetary Computer SAS endpoint answered HTTP {resp.status_code} "
                    f"without a token for {collection!r}: try again later."
                ) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            self._cache[collection] = _Sas(Secret(token), when.timestamp())
            return self._cache[collection].token

    def invalidate(self) -> None:
        """Forget every cached token (after a 403 from blob storage).

        Returns
        -------
        None
        """
        with self._lock:
            self._cache.clear()
