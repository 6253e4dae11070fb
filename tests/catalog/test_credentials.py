"""Credentials and tokens: where they are read, renewal before expiry and after a 401, no leaks."""

from __future__ import annotations

import json
import logging
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mus_lab.catalog import Pending, Ready, access_for, search
from mus_lab.catalog._credentials import (
    Credentials,
    EodmsTokens,
    OAuth2PasswordTokens,
    Secret,
    find_credentials,
    require_credentials,
)
from mus_lab.catalog._providers import forget_tokens
from mus_lab.catalog._providers._eodms import EodmsAccess
from mus_lab.errors import CredentialsError, MusLabError
from mus_lab.testing import ReplayServer

CDSE_PATH = "/identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"


@pytest.fixture
def no_user_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("MUS_LAB_CREDENTIALS_FILE", str(tmp_path / "credentials.toml"))
    for name in ("CDSE", "EODMS"):
        monkeypatch.delenv(f"MUS_LAB_{name}_USERNAME", raising=False)
        monkeypatch.delenv(f"MUS_LAB_{name}_PASSWORD", raising=False)
    return tmp_path


def test_secret_never_shows() -> None:
    s = Secret("hunter2")
    assert repr(s) == "Secret('***')" and str(s) == "***" and f"{s}" == "***"
    assert "hunter2" not in repr(Credentials("ann", s, "environment"))
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert s.reveal() == "hunter2" and s == Secret("hunter2")


def test_sources_in_order(no_user_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_credentials("cdse", host="identity.example") is None
    toml = no_user_files / "credentials.toml"
    toml.write_text('[cdse]\nusername = "file-user"\npassword = "file-pw"\n')
    toml.chmod(0o600)
    assert find_credentials("cdse").username == "file-user"  # type: ignore[union-attr]
    netrc = no_user_files / ".netrc"
    netrc.write_text("machine identity.example login netrc-user password netrc-pw\n")
    netrc.chmod(0o600)
    found = find_credentials("cdse", host="identity.example")
    assert found is not None and found.username == "netrc-user" and found.origin == str(netrc)
    monkeypatch.setenv("MUS_LAB_CDSE_USERNAME", "env-user")
    monkeypatch.setenv("MUS_LAB_CDSE_PASSWORD", "env-pw")
    found = find_credentials("cdse", host="identity.example")
    assert found is not None and (found.username, found.password.reveal()) == ("env-user", "env-pw")


def test_config_file_must_be_private(no_user_files: Path) -> None:
    toml = no_user_files / "credentials.toml"
    toml.write_text('[eodms]\nusername = "u"\npassword = "leaky-pw"\n')
    toml.chmod(0o644)
    with pytest.raises(CredentialsError, match=r"chmod 600") as info:
        find_credentials("eodms")
    assert "leaky-pw" not in str(info.value)
    toml.write_text('[eodms]\nusername = "u"\npassword = "leaky-pw\n')  # broken TOML
    toml.chmod(0o600)
    with pytest.raises(CredentialsError, match=r"not a readable TOML file") as info:
        find_credentials("eodms")
    assert "leaky-pw" not in str(info.value) and info.value.__cause__ is None


def test_missing_credentials_say_how(no_user_files: Path) -> None:
    with pytest.raises(CredentialsError, match=r"MUS_LAB_EODMS_USERNAME.*machine eodms.example"):
        require_credentials("eodms", host="eodms.example")


@pytest.fixture(scope="module")
def server(real_data: Path) -> Iterator[ReplayServer]:
    if not (real_data / "eodms_real_responses").is_dir():
        pytest.skip("eodms_real_responses is absent from the real data folder")
    with ReplayServer(real_data, access_lifetime=600, refresh_lifetime=3600) as srv:
        yield srv


@pytest.fixture
def replay(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch, no_user_files: Path
) -> Iterator[ReplayServer]:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    server.requests.clear()
    server.dds_calls.clear()
    forget_tokens()
    yield server
    forget_tokens()


def _cdse(
    server: ReplayServer, clock: list[float], password: str | None = None
) -> OAuth2PasswordTokens:
    user, real = server.users["cdse"]
    creds = Credentials(user, Secret(password or real), "test")
    return OAuth2PasswordTokens(server.base + CDSE_PATH, creds, clock=lambda: clock[0])


@pytest.mark.realdata
def test_cdse_refresh_before_expiry_and_relogin(replay: ReplayServer) -> None:
    clock = [time.time()]
    tokens = _cdse(replay, clock)
    first = tokens.token()
    assert tokens.token() == first and tokens.logins == 1  # reused
    clock[0] += 600 - 59  # inside the 60 s margin: refreshed before it expires
    second = tokens.token()
    assert second != first and tokens.refreshes == 1 and tokens.logins == 1
    replay.expire_tokens("refresh")
    clock[0] += 600
    third = tokens.token()  # the refresh token is refused too: log in again
    assert third not in (first, second) and tokens.logins == 2


@pytest.mark.realdata
def test_cdse_401_mid_run_renews(replay: ReplayServer) -> None:
    item = search("cdse-odata", collections="sentinel-2-l1c", limit=5)[0]
    access = access_for(item)
    ready = access.prepare(item, "product", item.assets["product"])
    assert isinstance(ready, Ready)
    replay.expire_tokens("access")  # the server says the token expired before we thought
    import requests

    assert requests.get(ready.url, headers=dict(ready.headers), timeout=5).status_code == 401
    access.refresh()
    again = access.prepare(item, "product", item.assets["product"])
    assert isinstance(again, Ready) and again.headers != ready.headers
    assert requests.get(again.url, headers=dict(again.headers), timeout=5).status_code == 200


@pytest.mark.realdata
def test_eodms_tokens_and_401_during_order(replay: ReplayServer) -> None:
    user, password = replay.users["eodms"]
    clock = [time.time()]
    tokens = EodmsTokens(replay.base + "/www.eodms-sgdot.nrcan-rncan.gc.ca",
                         Credentials(user, Secret(password)), clock=lambda: clock[0])  # fmt: skip
    first = tokens.token()
    clock[0] += 560
    assert tokens.token() != first and tokens.refreshes == 1
    item = search("eodms", collections="RCMImageProducts", limit=10)[0]
    access = EodmsAccess(tokens)
    assert isinstance(access.prepare(item, "product", item.assets["product"]), Pending)
    replay.expire_tokens("access")  # 401 on the next poll: renewed, then the poll goes on
    ready = access.prepare(item, "product", item.assets["product"])
    assert isinstance(ready, Ready) and tokens.refreshes == 2


@pytest.mark.realdata
def test_bad_credentials_clear_error_nothing_downloaded(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MUS_LAB_EODMS_PASSWORD", "wrong-secret-pw")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CredentialsError, match=r"EODMS refused the username and password of 'bob'.*"
                       r"MUS_LAB_EODMS_PASSWORD.*Nothing was downloaded") as info:  # fmt: skip
        search("eodms", collections="rcm-ard")
    assert isinstance(info.value, MusLabError)
    assert not [p for p in replay.requests if "/search/" in p[1] or "/dds/" in p[1]]
    monkeypatch.setenv("MUS_LAB_CDSE_PASSWORD", "wrong-cdse-pw")
    item = search("cdse-odata", collections="sentinel-2-l1c", limit=5)[0]  # search is anonymous
    with pytest.raises(CredentialsError, match=r"cdse refused .*'alice@example.org'") as info2:
        access_for(item).prepare(item, "product", item.assets["product"])
    assert not [p for p in replay.requests if "$value" in p[1]]
    for text in (str(info.value), str(info2.value), caplog.text):
        assert "wrong-secret-pw" not in text and "wrong-cdse-pw" not in text


@pytest.mark.realdata
def test_secrets_never_leak(replay: ReplayServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cdse_item = search("cdse-odata", collections="sentinel-2-l1c", limit=5)[0]
    cdse_access = access_for(cdse_item)
    ready = cdse_access.prepare(cdse_item, "product", cdse_item.assets["product"])
    assert isinstance(ready, Ready)
    token = ready.headers["Authorization"].removeprefix("Bearer ")
    eodms_item = search("eodms", collections="RCMImageProducts", limit=10)[0]
    eodms_access = access_for(eodms_item)
    eodms_access.prepare(eodms_item, "product", eodms_item.assets["product"])
    issued = list(replay.state.tokens)  # every access and refresh token the server gave
    secrets = [*issued, token, replay.users["cdse"][1], replay.users["eodms"][1]]
    shown = [
        caplog.text,
        repr(ready),
        repr(cdse_access),
        repr(eodms_access),
        repr(getattr(cdse_access, "tokens", "")),
        json.dumps(cdse_item.to_dict()),
        json.dumps(eodms_item.to_dict()),
    ]
    for text in shown:
        for secret in secrets:
            assert secret not in text
