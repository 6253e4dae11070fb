"""Fixtures of the production tests."""

from __future__ import annotations

import pytest
from distributed import Client


@pytest.fixture(scope="module")
def client():
    """An in-process Dask client (one worker, two threads) for a test module's chains."""
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        yield c
