"""Dask clusters: a local cluster by default, Dask Gateway beyond one machine.

No home-made scheduler: this stage only chooses and starts a real Dask cluster.

Example
-------
>>> from mus_lab.compute import cluster
>>> with cluster(n_workers=1) as client:  # doctest: +SKIP
...     client.submit(sum, [1, 2]).result()
3
"""

from mus_lab.compute._clusters import ClusterInfo, close, cluster, describe, get_client

__all__ = ["ClusterInfo", "close", "cluster", "describe", "get_client"]
