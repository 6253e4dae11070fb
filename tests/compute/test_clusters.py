from __future__ import annotations

import dask
import dask.array as da
import pytest

from mus_lab import set_options
from mus_lab.compute import close, cluster, describe, get_client
from mus_lab.errors import ComputeError
from tests._servers import dask_gateway_server, free_port


def test_local_cluster_by_default_computes_and_closes():
    with cluster(n_workers=1, memory_limit="1GiB") as client:
        info = describe(client)
        assert info.kind == "local"
        assert info.workers == 1
        assert info.scheduler.startswith("tcp://127.0.0.1:")
        x = da.arange(1000, chunks=100)
        assert int(client.compute(x.sum()).result()) == 499500
    assert client.status == "closed"


def test_clients_closed_out_of_order_leave_no_dead_scheduler_behind():
    # the second client records the first one's "dask.distributed" setting; closing the
    # first while the second is open, then the second, restored that setting with no client
    first = get_client(n_workers=1, memory_limit="1GiB")
    second = get_client(first.scheduler.address)
    close(first)
    close(second)
    assert dask.config.get("scheduler", None) is None
    assert int(da.arange(10, chunks=5).sum().compute()) == 45


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ComputeError, match="Could not reach the Dask scheduler"):
        get_client(f"tcp://127.0.0.1:{free_port()}", timeout=2)


def test_unreachable_gateway_is_a_clear_error():
    with (
        set_options(gateway_address=f"http://127.0.0.1:{free_port()}"),
        pytest.raises(ComputeError, match="Dask Gateway"),
    ):
        get_client(timeout=5)


@pytest.mark.slow
def test_gateway_cluster_from_setting(tmp_path):
    with (
        dask_gateway_server(tmp_path) as address,
        set_options(gateway_address=address),
        cluster(n_workers=1, gateway_auth="basic", timeout=120) as client,
    ):
        info = describe(client)
        assert info.kind == "gateway"
        assert info.workers == 1
        x = da.ones((200, 200), chunks=50)
        assert float(client.compute(x.sum()).result()) == 40000.0
