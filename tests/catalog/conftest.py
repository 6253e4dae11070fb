"""Fixtures of the catalog tests: real recorded STAC API responses and a small local catalog."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pystac
import pytest

from mus_lab._settings import get_settings
from tests._stac_server import Interaction, RecordedStacServer, load_cassette

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"

# Search cassettes often lack the landing page pystac-client opens first. These real
# recordings of the same APIs provide it:
# - Earth Search v1: landing page and /collections from the pystac-client CLI test
#   "test_collections_inprocess_" (its landing page declares Query, not Filter).
# - Planetary Computer: the recent landing page (declares Filter/CQL2) and
#   /collections/sentinel-2-l2a from "test_sign_with_return_warns"; the older
#   pystac_client_tests_data/planetary-computer-root.json (STAC API beta.1, no Filter)
#   is not used.
LANDING_CASSETTES = (
    "test_cli_TestCLICollections.test_collections_inprocess_.json",
    "test_client_TestSigning.test_sign_with_return_warns.json",
)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real-data folder (``MUS_LAB_REAL_DATA``, default ``../shared/data``); skip when absent."""
    folder = get_settings().real_data
    if not (folder / "stac_real_responses").is_dir():
        pytest.skip(
            f"real data not found at {folder.resolve()}: set MUS_LAB_REAL_DATA to the shared data "
            "folder (the one holding stac_real_responses/)"
        )
    return folder


@pytest.fixture(scope="session")
def cassettes(real_data: Path) -> Path:
    return real_data / "stac_real_responses" / "pystac_client_cassettes_json"


ServerFactory = Callable[..., RecordedStacServer]


@pytest.fixture
def recorded_stac_api(cassettes: Path) -> Iterator[ServerFactory]:
    """Start a local server replaying cassettes; ``recorded_stac_api(name, ..., extra=[...])``.

    The landing pages of :data:`LANDING_CASSETTES` are always added after the named
    cassettes. ``extra`` adds composed :class:`Interaction` objects (say why in the test).
    Servers are stopped when the test ends.
    """
    started: list[RecordedStacServer] = []

    def start(
        *names: str, extra: list[Interaction] | tuple[Interaction, ...] = ()
    ) -> RecordedStacServer:
        interactions = [i for n in names for i in load_cassette(cassettes / n)]
        interactions += list(extra)
        for n in LANDING_CASSETTES:
            interactions += load_cassette(cassettes / n)
        server = RecordedStacServer(interactions).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _item(
    item_id: str,
    collection: str,
    when: str,
    box: tuple[float, float, float, float],
    assets: dict[str, str | None],
    cloud: float | None = None,
    end: str | None = None,
) -> pystac.Item:
    minx, miny, maxx, maxy = box
    geom = {
        "type": "Polygon",
        "coordinates": [[[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]],
    }
    props: dict[str, object] = {}
    if cloud is not None:
        props["eo:cloud_cover"] = cloud
    start = dt.datetime.fromisoformat(when)
    item = pystac.Item(
        item_id,
        geom,
        list(box),
        None if end else start,
        props,
        start_datetime=start if end else None,
        end_datetime=dt.datetime.fromisoformat(end) if end else None,
        collection=collection,
    )
    for key, common in assets.items():
        extra = {"eo:bands": [{"name": key, "common_name": common}]} if common else {}
        item.add_asset(key, pystac.Asset(f"./{key}.tif", extra_fields=extra))
    return item


WEST = (0.0, 0.0, 1.0, 1.0)
EAST = (2.0, 0.0, 3.0, 1.0)
S2_ASSETS: dict[str, str | None] = {"B04": "red", "B08": "nir", "SCL": None, "B05": "rededge"}


def local_items() -> list[pystac.Item]:
    """The 10 items of the local test catalog (6 Sentinel-2 with PC-style keys, 4 Sentinel-1)."""
    s2 = [
        _item("s2-0601-w", "sentinel-2-l2a", "2024-06-01T10:30:00+00:00", WEST, S2_ASSETS, 5.0),
        _item("s2-0606-w", "sentinel-2-l2a", "2024-06-06T10:30:00+00:00", WEST, S2_ASSETS, 15.0),
        _item("s2-0611-w", "sentinel-2-l2a", "2024-06-11T10:30:00+00:00", WEST, S2_ASSETS, 60.0),
        _item("s2-0611-e", "sentinel-2-l2a", "2024-06-11T10:31:00+00:00", EAST, S2_ASSETS, 2.0),
        _item("s2-0616-e", "sentinel-2-l2a", "2024-06-16T10:30:00+00:00", EAST, S2_ASSETS, 35.0),
        _item("s2-0621-e", "sentinel-2-l2a", "2024-06-21T10:30:00+00:00", EAST, S2_ASSETS),
    ]
    s1_assets: dict[str, str | None] = {"vv": None, "vh": None}
    s1 = [
        _item("s1-0603-w", "sentinel-1-grd", "2024-06-03T05:50:00+00:00", WEST, s1_assets),
        _item("s1-0609-e", "sentinel-1-grd", "2024-06-09T05:50:00+00:00", EAST, s1_assets),
        _item("s1-0615-w", "sentinel-1-grd", "2024-06-15T05:50:00+00:00", WEST, s1_assets),
        _item(
            "s1-0620-range",
            "sentinel-1-grd",
            "2024-06-20T23:00:00+00:00",
            EAST,
            s1_assets,
            end="2024-06-22T01:00:00+00:00",
        ),
    ]
    return s2 + s1


def write_catalog(folder: Path, items: list[pystac.Item]) -> Path:
    """Write ``items`` as a self-contained static catalog, one collection per collection id."""
    catalog = pystac.Catalog("test-catalog", "Local catalog of the catalog tests")
    for cid in dict.fromkeys(i.collection_id for i in items):
        members = [i for i in items if i.collection_id == cid]
        extent = pystac.Extent(
            pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
            pystac.TemporalExtent([[None, None]]),
        )
        collection = pystac.Collection(str(cid), f"{cid} test items", extent)
        catalog.add_child(collection)
        for item in members:
            item.clear_links()
            collection.add_item(item)
    catalog.normalize_hrefs(str(folder))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"


@pytest.fixture(scope="session")
def local_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a small static catalog: 2 collections, 10 items, June 2024."""
    folder = tmp_path_factory.mktemp("local-catalog")
    write_catalog(folder, local_items())
    return folder
