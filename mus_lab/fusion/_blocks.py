"""Run a per-chunk function over mass cubes and maps without copying the chunks.

``xr.apply_ufunc(dask="parallelized")`` moves core dimensions last and concatenates the
chunks of each core dimension (a copy of every mass chunk, then another to get the focal
planes back). Here the chunks go to the function as they are stored, planes first
(``(n_focal, y, x)``), through ``dask.array.blockwise(concatenate=False)``; several outputs
come from one call per chunk (a tuple) and are split by ``getitem`` tasks, as dask's
``apply_gufunc`` does. Graph names are deterministic (tokenised from the inputs and the
parameters given in ``token``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

__all__ = ["map_planes"]


def _grid_coords(obj: xr.DataArray) -> dict[str, Any]:
    return {str(k): v for k, v in obj.coords.items() if set(v.dims) <= {"y", "x"}}


def map_planes(
    func: Callable[[list[np.ndarray], list[np.ndarray]], tuple[np.ndarray, ...]],
    planes: Sequence[xr.DataArray],
    maps: Sequence[xr.DataArray],
    outputs: Sequence[tuple[Any, int | None]],
    *,
    name: str,
    token: Any,
    lead: str = "focal",
) -> list[xr.DataArray]:
    """Apply ``func(planes, maps)`` chunk by chunk.

    Parameters
    ----------
    func
        Gets the planes' chunks ``(n, y, x)`` and the maps' chunks ``(y, x)`` as numpy arrays;
        returns one array per output, ``(y, x)`` or ``(k, y, x)``.
    planes, maps
        DataArrays ``(lead, y, x)`` and ``(y, x)`` on one grid.
    outputs
        ``(dtype, k)`` per output; ``k`` is the leading size of a 3-D output, else ``None``.
    name, token
        Graph name prefix and what, besides the inputs, determines the result.

    Returns
    -------
    list of xarray.DataArray
        Dask-backed when any input is, on the first plane cube's grid coordinates.
    """
    coords = _grid_coords(planes[0])
    dims = [("y", "x") if k is None else (lead, "y", "x") for _, k in outputs]
    objs = [*planes, *maps]
    chunked = [o for o in objs if o.chunks is not None]
    if not chunked:
        res = func([p.values for p in planes], [m.values for m in maps])
        return [
            xr.DataArray(np.asarray(r, dtype=dt), dims=d, coords=coords)
            for r, (dt, _), d in zip(res, outputs, dims, strict=True)
        ]
    ref = chunked[0]
    ychunks = ref.chunksizes["y"]
    xchunks = ref.chunksizes["x"]
    args: list[Any] = []
    for i, p in enumerate(planes):
        arr = p.data if p.chunks is not None else da.from_array(p.values, chunks=-1)
        arr = arr.rechunk((-1, ychunks, xchunks))
        args += [arr, (f"lead{i}", "y", "x")]
    for m in maps:
        arr = m.data if m.chunks is not None else da.from_array(m.values, chunks=-1)
        args += [arr.rechunk((ychunks, xchunks)), ("y", "x")]
    n_planes = len(planes)

    def _call(*blocks: Any) -> tuple[np.ndarray, ...]:
        arrays = [b[0] if isinstance(b, list) else b for b in blocks]
        return tuple(func(arrays[:n_planes], arrays[n_planes:]))

    tok = tokenize(name, token, *[a.name for a in args[::2]])
    tmp = da.blockwise(
        _call,
        ("y", "x"),
        *args,
        concatenate=False,
        dtype=object,
        meta=np.empty((0, 0), dtype=object),
        name=f"{name}-{tok}",
    )
    out = []
    for i, ((dt, k), d) in enumerate(zip(outputs, dims, strict=True)):
        kwargs: dict[str, Any] = {"dtype": dt, "name": f"{name}-{i}-{tok}"}
        if k is None:
            arr = tmp.map_blocks(operator.getitem, i, meta=np.empty((0, 0), dt), **kwargs)
        else:
            arr = tmp.map_blocks(
                operator.getitem,
                i,
                new_axis=0,
                chunks=((k,), *tmp.chunks),
                meta=np.empty((0, 0, 0), dt),
                **kwargs,
            )
        out.append(xr.DataArray(arr, dims=d, coords=coords))
    return out
