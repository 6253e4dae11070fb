"""Dask clusters: a local cluster by default, Dask Gateway beyond one machine.

No home-made scheduler: this stage only chooses and starts a real Dask cluster
(:func:`cluster`, :func:`get_client`; their examples start a one-worker local cluster).
"""

from mus_lab.compute._clusters import ClusterInfo, close, cluster, describe, get_client

__all__ = ["ClusterInfo", "close", "cluster", "describe", "get_client"]
