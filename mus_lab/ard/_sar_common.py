"""Helpers shared by the Sentinel-1 and RCM readers: dB conversion, XML access, lazy TIFFs.

Everything here works on numpy arrays, dask arrays and xarray objects alike and never
computes a dask graph.
"""

from __future__ import annotations

import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from mus_lab._settings import resolve_chunks
from mus_lab.errors import MetadataError, ProductFileError

__all__ = [
    "apply_blockwise",
    "from_db",
    "open_tiff_lazy",
    "to_db",
]

ArrayT = TypeVar("ArrayT")

_OPEN_LOCK = threading.Lock()

#: Value written for ``10 * log10(x)`` where ``x <= 0``: NaN (never ``-inf``).
_DB_FLOOR = np.nan


def to_db(x: ArrayT) -> ArrayT:
    """Convert linear power to decibels, ``10 * log10(x)``, NaN-safe.

    Zero, negative and NaN inputs give NaN (never ``-inf`` or a warning).

    Parameters
    ----------
    x : numpy.ndarray, dask.array.Array, xarray.DataArray or float
        Linear power (sigma0, beta0, gamma0, intensity).

    Returns
    -------
    Same type as ``x``
        Values in dB, floating point. Lazy inputs stay lazy.

    Raises
    ------
    BackscatterInputError
        An xarray object whose ``units`` attribute says dB already (``x <= 0`` gives NaN).

    Examples
    --------
    >>> import numpy as np
    >>> to_db(np.array([1.0, 0.1, 0.0]))
    array([  0., -10.,  nan])
    """
    _refuse_units(x, "db", "to_db expects linear power but got dB already: do not convert twice.")

    def _np(a: Any) -> Any:
        a = np.asarray(a, dtype=np.result_type(a, np.float32))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, 10.0 * np.log10(np.where(a > 0, a, 1)), _DB_FLOOR).astype(
                a.dtype
            )

    return _elementwise(x, _np)


def from_db(x: ArrayT) -> ArrayT:
    """Convert decibels to linear power, ``10 ** (x / 10)``; NaN stays NaN.

    Parameters
    ----------
    x : numpy.ndarray, dask.array.Array, xarray.DataArray or float
        Values in dB.

    Returns
    -------
    Same type as ``x``
        Linear power. Lazy inputs stay lazy.

    Raises
    ------
    BackscatterInputError
        An xarray object whose ``units`` attribute says linear power (NaN stays NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from_db(np.array([0.0, -10.0, np.nan]))
    array([1. , 0.1, nan])
    """
    _refuse_units(
        x, "linear", "from_db expects dB but got linear power already: do not convert twice."
    )

    def _np(a: Any) -> Any:
        a = np.asarray(a, dtype=np.result_type(a, np.float32))
        return np.power(a.dtype.type(10), a / 10).astype(a.dtype)

    return _elementwise(x, _np)


def _refuse_units(x: Any, scale: str, message: str) -> None:
    """Raise :class:`BackscatterInputError` when ``x``'s ``units`` attribute is ``scale``."""
    from mus_lab.errors import BackscatterInputError

    units = str((getattr(x, "attrs", None) or {}).get("units", "")).strip().lower()
    if (scale == "db" and units == "db") or (scale == "linear" and units.startswith("linear")):
        raise BackscatterInputError(message)


def _elementwise(x: Any, func: Callable[[Any], Any]) -> Any:
    if isinstance(x, xr.DataArray | xr.Dataset):
        return xr.apply_ufunc(func, x, dask="parallelized", keep_attrs=True)
    if isinstance(x, da.Array):
        return da.map_blocks(func, x, dtype=np.result_type(x.dtype, np.float32))
    out = func(x)
    return out[()] if np.ndim(out) == 0 else out


def apply_blockwise(
    data: Any,
    func: Callable[[np.ndarray, int, int], np.ndarray],
    *,
    dtype: Any = np.float32,
    name: str = "sar-block",
    token: Any = None,
) -> Any:
    """Apply ``func(block, row0, col0)`` to a 2-D array, block by block when it is lazy.

    ``row0`` and ``col0`` are the block's offset in the full array, so a function that
    evaluates a look-up table at image coordinates never needs the full grid.
    numpy in -> numpy out; dask in -> dask out (``map_blocks``, deterministic name);
    xarray in -> xarray out with the same coordinates (the last two dims are rows, cols).
    """
    if isinstance(data, xr.DataArray):
        out = apply_blockwise(data.data, func, dtype=dtype, name=name, token=token)
        return xr.DataArray(out, coords=data.coords, dims=data.dims, attrs=dict(data.attrs))
    if isinstance(data, da.Array):
        if data.ndim != 2:
            raise MetadataError(
                f"Expected a 2-D (line, pixel) array, got {data.ndim} dims: select one band first."
            )

        def _block(block: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
            assert block_info is not None
            (r0, _), (c0, _) = block_info[0]["array-location"]
            return func(block, r0, c0)

        return da.map_blocks(
            _block,
            data,
            dtype=dtype,
            name=f"{name}-{tokenize(data, token, name)}",
            meta=np.empty((0, 0), dtype=dtype),
        )
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise MetadataError(
            f"Expected a 2-D (line, pixel) array, got {arr.ndim} dims: select one band first."
        )
    return func(arr, 0, 0)


def calibrated_blockwise(
    dn: Any,
    func: Callable[[np.ndarray, int, int], np.ndarray],
    *,
    to: str,
    noise_removed: bool,
    name: str,
    token: Any,
) -> Any:
    """:func:`apply_blockwise` to float32 linear backscatter: an xarray result is named ``to``
    and says its units, calibration and whether noise was removed."""
    out = apply_blockwise(dn, func, dtype=np.float32, name=name, token=token)
    if isinstance(out, xr.DataArray):
        out.name = to
        out.attrs.update(units="linear power", calibration=to, noise_removed=noise_removed)
    return out


def clip_floor(clip: float | str) -> float | None:
    """The floor a ``clip`` option asks for: None for ``"nan"``, else a positive float."""
    if clip == "nan":
        return None
    if isinstance(clip, int | float) and not isinstance(clip, bool) and clip > 0:
        return float(clip)
    raise MetadataError(f"clip={clip!r} is not understood: pass 'nan' or a positive float.")


# --- XML ---------------------------------------------------------------------------------
def strip_namespaces(root: ET.Element) -> ET.Element:
    """Remove ``{namespace}`` prefixes from every tag in place and return ``root``."""
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    return root


def parse_xml(source: str | Path | bytes, *, what: str) -> ET.Element:
    """Parse XML from a path or bytes, namespaces removed; errors name the file."""
    label = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        if isinstance(source, bytes):
            root = ET.fromstring(source)
        else:
            root = ET.parse(source).getroot()
    except FileNotFoundError as exc:
        raise ProductFileError(
            f"{what} not found at {label}: check the product is complete (unzipped fully)."
        ) from exc
    except ET.ParseError as exc:
        raise MetadataError(f"{what} at {label:.200} is not valid XML: {exc}") from exc
    return strip_namespaces(root)


def text(root: ET.Element, path: str, *, what: str, default: str | None = None) -> str:
    """Text of ``root.find(path)``; raise :class:`MetadataError` when absent and no default."""
    el = root.find(path)
    if el is None or el.text is None:
        if default is not None:
            return default
        raise MetadataError(
            f"{what} has no <{path}> element: the file is incomplete or not {what}."
        )
    return el.text.strip()


def floats(s: str) -> np.ndarray:
    """Whitespace-separated numbers as a float64 array."""
    return np.array(s.split(), dtype=np.float64)


# --- imagery -------------------------------------------------------------------------------
def open_tiff_lazy(
    path: str | Path,
    *,
    band: int = 1,
    chunks: int | tuple[int, int] | None = None,
    name: str = "tiff",
) -> xr.DataArray:
    """Open one band of a TIFF as a lazy ``(line, pixel)`` DataArray read window by window.

    Parameters
    ----------
    path : str or pathlib.Path
        File path or GDAL path (``/vsizip/...``).
    band : int, optional
        1-based band index.
    chunks : int or (int, int), optional
        Block size in pixels (default: the ``chunk_size`` setting,
        :func:`mus_lab.set_options`).
    name : str, optional
        Name of the DataArray.

    Returns
    -------
    xarray.DataArray
        Dask-backed, dims ``("line", "pixel")`` with integer coordinates; the native dtype.

    Raises
    ------
    ProductFileError
        The file does not exist or GDAL cannot open it.

    Examples
    --------
    >>> from mus_lab import catalog
    >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
    >>> dn = open_tiff_lazy(item.assets["vv"].get_absolute_href(), chunks=32)
    >>> dn.dims, dn.dtype, dn.data.chunksize
    (('line', 'pixel'), dtype('uint16'), (32, 32))
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    from rasterio.windows import Window

    path = str(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
        with src:
            height, width = src.height, src.width
            dtype = np.dtype(src.dtypes[band - 1])
    except RasterioIOError as exc:
        raise ProductFileError(
            f"Cannot open imagery {path}: check the file exists and is a GeoTIFF ({exc})."
        ) from exc
    ch, cw = (
        (resolve_chunks(chunks),) * 2
        if chunks is None or isinstance(chunks, int)
        else tuple(resolve_chunks(c) for c in chunks)
    )
    row_chunks = tuple(min(ch, height - r) for r in range(0, height, ch))
    col_chunks = tuple(min(cw, width - c) for c in range(0, width, cw))

    def _read(block_info: dict[Any, Any] | None = None) -> np.ndarray:
        assert block_info is not None
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        with _OPEN_LOCK, warnings.catch_warnings():  # catch_warnings is not thread-safe
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
        with src:
            return src.read(band, window=Window(c0, r0, c1 - c0, r1 - r0))  # type: ignore[no-any-return]

    arr = da.map_blocks(
        _read,
        chunks=(row_chunks, col_chunks),
        dtype=dtype,
        name=f"{name}-{tokenize(path, band, (ch, cw))}",
        meta=np.empty((0, 0), dtype=dtype),
    )
    return xr.DataArray(
        arr,
        dims=("line", "pixel"),
        coords={"line": np.arange(height), "pixel": np.arange(width)},
        name=name,
        attrs={"source": path},
    )
