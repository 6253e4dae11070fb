"""A user's own series of GeoTIFFs to a lazy cube, in one call (:func:`open_series`).

Users hold their series as files, not as STAC items: one GeoTIFF per date (all bands of that
date in it), or one multi-band GeoTIFF per variable whose bands are the dates (an NDVI stack
exported from a GIS, Google Earth Engine or R). :func:`open_series` reads either into the
cube every stage takes: ``(time, y, x)`` float32 variables, a ``spatial_ref`` coordinate and
the odc-geo grid, dask-backed. Only the files' headers are read at call time; each dask task
reads one window of one band of one file (a chunk), so memory follows the chunk size, not the
series. Design notes: docs/design/0004-landcover.md (section "A user's own series").
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from odc.geo import CRS
from odc.geo.geobox import GeoBox

from mus_lab._settings import resolve_chunks
from mus_lab.cube._same import _axes, as_yx, describe_grid, geobox_of, match_grid, same_grid
from mus_lab.errors import (
    BandMismatchError,
    GridReprojectedWarning,
    NoSeriesFilesError,
    SeriesDateError,
    SeriesError,
    SeriesGridError,
    UnreadableRasterError,
)

__all__ = ["DATE_PATTERN", "date_from_name", "open_series"]

#: Dates found in file names and band descriptions: ``YYYYMMDD``, ``YYYY-MM-DD`` or
#: ``YYYY_MM_DD``, not inside a longer run of digits. The first valid date (a real calendar day
#: between 1900 and 2100) is taken: the acquisition date of Sentinel and Landsat product names.
DATE_PATTERN = r"(?<!\d)(\d{4})([-_]?)(\d{2})\2(\d{2})(?!\d)"
_DATE_RE = re.compile(DATE_PATTERN)
_DATE_FORMS = "YYYYMMDD, YYYY-MM-DD or YYYY_MM_DD"
#: Band metadata keys (any case) that may hold a band's date when its description does not.
_DATE_TAGS = ("date", "datetime", "time", "acquisition_date", "acquisition_datetime")
_SUFFIXES = (".tif", ".tiff")

PathLike = str | os.PathLike[str]


def _find_date(text: str | None) -> np.datetime64 | None:
    for m in _DATE_RE.finditer(text or ""):
        year, _, month, day = m.groups()
        try:
            found = dt.date(int(year), int(month), int(day))
        except ValueError:
            continue
        if 1900 <= found.year <= 2100:
            return np.datetime64(found, "ns")
    return None


def date_from_name(name: PathLike) -> np.datetime64:
    """The date in a file name: the first ``YYYYMMDD``, ``YYYY-MM-DD`` or ``YYYY_MM_DD``.

    Only the file's own name is searched, not its folders (:data:`DATE_PATTERN`).

    Parameters
    ----------
    name
        A file name or path.

    Returns
    -------
    numpy.datetime64
        The day, at midnight (``datetime64[ns]``).

    Raises
    ------
    SeriesDateError
        The name holds no such date.

    Examples
    --------
    >>> str(date_from_name("S2B_MSIL2A_20230401T101559_N0509_R065_T32TQM_20230401T131540.tif"))
    '2023-04-01T00:00:00.000000000'
    >>> str(date_from_name("ndvi_2023-04-21.tif"))[:10]
    '2023-04-21'
    """
    found = _find_date(Path(os.fspath(name)).name)
    if found is None:
        raise SeriesDateError(
            f"No date ({_DATE_FORMS}) in the file name {Path(os.fspath(name)).name!r}: "
            "rename the files or pass dates=[...] (one per file)."
        )
    return found


@dataclass(frozen=True)
class _Raster:
    """What the header of one file says (read once, at call time)."""

    path: str
    count: int
    geobox: GeoBox
    descriptions: tuple[str | None, ...]
    band_dates: tuple[np.datetime64 | None, ...]
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    token: str

    @property
    def name(self) -> str:
        return Path(self.path).name


def _local(path: str) -> bool:
    return "://" not in path and not path.startswith("/vsi")


def _inspect(path: str) -> _Raster:
    import rasterio
    from rasterio.errors import RasterioError

    if _local(path) and not Path(path).is_file():
        raise UnreadableRasterError(f"No file {path}: check the path (or the folder it is in).")
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise SeriesGridError(
                    f"{Path(path).name} has no CRS: write it with one (gdal_edit.py -a_srs "
                    "EPSG:...) so that its pixels can be placed."
                )
            epsg = src.crs.to_epsg()
            crs = CRS(f"EPSG:{epsg}") if epsg else CRS(src.crs.to_wkt())
            geobox = GeoBox((src.height, src.width), src.transform, crs)
            dates: list[np.datetime64 | None] = []
            for band in range(1, src.count + 1):
                found = _find_date(src.descriptions[band - 1])
                tags = {k.lower(): v for k, v in src.tags(band).items()}
                for key in _DATE_TAGS:
                    if found is None and key in tags:
                        found = _find_date(tags[key])
                dates.append(found)
            stat = os.stat(path) if _local(path) else None
            return _Raster(
                path=path,
                count=src.count,
                geobox=geobox,
                descriptions=tuple(src.descriptions),
                band_dates=tuple(dates),
                scales=tuple(float(s) for s in src.scales),
                offsets=tuple(float(o) for o in src.offsets),
                token=f"{stat.st_mtime_ns}-{stat.st_size}" if stat else "",
            )
    except RasterioError as exc:
        raise UnreadableRasterError(
            f"{Path(path).name} cannot be read as a raster ({exc}): give GeoTIFFs (or any "
            "raster GDAL reads)."
        ) from exc


class _BandReader:
    """One band of one file as a lazy 2-D array: dask reads it window by window."""

    ndim = 2
    dtype = np.dtype("float32")

    def __init__(
        self,
        path: str,
        band: int,
        shape: tuple[int, int],
        nodata: float | None,
        scale: float,
        offset: float,
    ) -> None:
        self.path, self.band, self.shape = path, band, shape
        self.nodata, self.scale, self.offset = nodata, scale, offset

    def __getitem__(self, key: Any) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        window = Window(c0, r0, c1 - c0, r1 - r0)  # type: ignore[call-arg]
        with rasterio.open(self.path) as src:
            raw = src.read(self.band, window=window, masked=self.nodata is None)
        out = np.ma.filled(np.ma.asarray(raw).astype("float32"), np.nan)
        if self.nodata is not None:
            nodata = np.float32(self.nodata)
            out[np.isnan(out) if np.isnan(nodata) else np.asarray(raw) == self.nodata] = np.nan
        if self.scale != 1.0 or self.offset != 0.0:
            out = out * np.float32(self.scale) + np.float32(self.offset)
        return out


def _band(r: _Raster, band: int, chunks: int, nodata: float | None) -> dsa.Array:
    """Band ``band`` (1-based) of ``r``, float32 with NaN no data, lazily."""
    ny, nx = r.geobox.shape.y, r.geobox.shape.x
    reader = _BandReader(r.path, band, (ny, nx), nodata, r.scales[band - 1], r.offsets[band - 1])
    name = "open-series-" + tokenize(r.path, r.token, band, nodata, chunks)
    return dsa.from_array(
        reader,
        chunks=(chunks, chunks),
        name=name,
        lock=False,
        asarray=True,
        inline_array=True,
        meta=np.empty((0, 0), dtype="float32"),
    )


def _as_files(paths: PathLike | Sequence[PathLike]) -> list[str]:
    if isinstance(paths, str | os.PathLike):
        text = os.fspath(paths)
        if Path(text).is_dir():
            found = sorted(str(p) for p in Path(text).iterdir() if p.suffix.lower() in _SUFFIXES)
            where = f"the folder {text}"
        elif glob.has_magic(text):
            found, where = sorted(glob.glob(text)), f"the pattern {text!r}"
        else:
            found, where = [text], text
        if not found:
            raise NoSeriesFilesError(
                f"No GeoTIFF (*.tif, *.tiff) in {where}: check the folder or the pattern."
            )
        return found
    files = [os.fspath(p) for p in paths]
    if not files:
        raise NoSeriesFilesError(
            "No file to open: give a list of GeoTIFFs (one per date), a folder, a pattern "
            "('data/s2_*.tif') or a mapping variable -> file."
        )
    return files


def _band_names(rasters: list[_Raster], band_names: Sequence[str] | None) -> list[str]:
    """Names of the bands of per-date files: given, or the first file's descriptions."""
    first = rasters[0]
    for r in rasters[1:]:
        if r.count != first.count:
            raise BandMismatchError(
                f"{r.name} has {r.count} bands but {first.name} has {first.count}: every "
                "per-date file must hold the same bands in the same order."
            )
    if band_names is not None:
        names = [str(n) for n in band_names]
        if len(names) != first.count:
            raise BandMismatchError(
                f"band_names has {len(names)} names but the files have {first.count} bands: "
                "give one name per band."
            )
    else:
        names = [d or f"band_{i}" for i, d in enumerate(first.descriptions, start=1)]
        for r in rasters[1:]:
            if all(r.descriptions) and list(r.descriptions) != names:
                raise BandMismatchError(
                    f"The bands of {r.name} are {list(r.descriptions)} but those of "
                    f"{first.name} are {names}: give files with the same bands in the same "
                    "order, or name them yourself with band_names=[...]."
                )
    if len(set(names)) != len(names):
        raise BandMismatchError(
            f"Band names {names} repeat a name: give band_names=[...] with distinct names."
        )
    return names


def _keep(names: Sequence[str], variables: Sequence[str] | None) -> list[str]:
    if variables is None:
        return list(names)
    missing = [v for v in variables if v not in names]
    if missing:
        raise BandMismatchError(
            f"No band {missing} in the files (they have {list(names)}): choose among those, "
            "or name the bands with band_names=[...]."
        )
    return list(variables)


def _given_dates(dates: Sequence[Any], n: int, what: str) -> list[np.datetime64]:
    if len(dates) != n:
        raise SeriesDateError(f"{len(dates)} dates given for {n} {what}: give one per {what[:-1]}.")
    try:
        return [np.datetime64(pd.Timestamp(d).to_datetime64(), "ns") for d in dates]
    except (TypeError, ValueError) as exc:
        raise SeriesDateError(f"Cannot read the dates {list(dates)[:5]}...: {exc}.") from exc


def _order(days: list[np.datetime64], labels: list[str]) -> list[int]:
    """Indices sorting ``days``; two labels on one day are refused."""
    order = sorted(range(len(days)), key=lambda i: days[i])
    seen: dict[Any, str] = {}
    for i in order:
        day = days[i].astype("datetime64[D]")
        if day in seen:
            raise SeriesDateError(
                f"{seen[day]} and {labels[i]} fall on the same day ({day}): features are named "
                "per day, so mosaic them into one file or drop one."
            )
        seen[day] = labels[i]
    return order


def _target(like: GeoBox | xr.Dataset | xr.DataArray | None, first: _Raster) -> GeoBox:
    if like is None:
        return first.geobox
    return like if isinstance(like, GeoBox) else geobox_of(like)


def _onto(
    r: _Raster,
    bands: list[dsa.Array],
    target: GeoBox,
    *,
    chunks: int,
    resampling: str | None,
    first: str,
    moved: list[str],
) -> list[dsa.Array]:
    """The bands of ``r`` on ``target``: as they are when the grids agree within 1e-6 px,
    reprojected lazily when ``resampling`` allows it, refused otherwise."""
    if same_grid(r.geobox, target):
        return bands
    if resampling is None:
        raise SeriesGridError(
            f"{r.name} is not on the grid of {first}: {describe_grid(r.geobox)} vs "
            f"{describe_grid(target)}. Pass resampling='bilinear' ('nearest' for classes) to "
            f"reproject it onto that grid, or give files on one grid."
        )
    ys, xs = _axes(r.geobox)
    arr = xr.DataArray(dsa.stack(bands), dims=("band", "y", "x"), coords={"y": ys, "x": xs})
    with warnings.catch_warnings():  # one warning for all the files, from open_series
        warnings.simplefilter("ignore", GridReprojectedWarning)
        out = match_grid(arr.odc.assign_crs(r.geobox.crs), target, resampling=resampling)
    moved.append(f"{r.name} ({describe_grid(r.geobox)})")
    data = out.data.rechunk((1, chunks, chunks))
    return [data[i] for i in range(len(bands))]


def open_series(
    paths: PathLike | Sequence[PathLike] | Mapping[str, PathLike],
    *,
    dates: Sequence[Any] | None = None,
    variables: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    nodata: float | None = None,
    chunks: int | None = None,
    like: GeoBox | xr.Dataset | xr.DataArray | None = None,
    resampling: str | None = None,
) -> xr.Dataset:
    """Open a user's own series of GeoTIFFs as a lazy ``(time, y, x)`` cube, in one call.

    Two layouts:

    * **one file per date** (a list, a folder or a pattern such as ``"data/s2_*.tif"``): every
      file holds the same bands, each band becomes a variable. Band names come from
      ``band_names``, else from the first file's band descriptions (``band_1``, ``band_2``...
      where it has none). Dates come from ``dates`` (one per file, in the order given), else
      from the file names (:func:`date_from_name`: the first ``YYYYMMDD``, ``YYYY-MM-DD`` or
      ``YYYY_MM_DD`` of the name).
    * **one file per variable** (a mapping ``{"ndvi": "ndvi.tif", ...}``): every band of a file
      is a date. Dates come from ``dates`` (one per band), else from each band's description or
      its ``date`` / ``datetime`` / ``time`` / ``acquisition_date`` metadata item (same
      forms); every file must hold the same dates.

    Dates are sorted; two files (or bands) on the same day are refused, since features are
    named per day. Values become **float32 with NaN for no data** (the file's nodata value and
    mask, or ``nodata``; its scale and offset applied), so that
    ``ard.gapfill(ds, ds.to_dataarray().isnull().any("variable"))`` fills the gaps and
    :func:`mus_lab.classify.feature_cube` stacks the variables directly. The grid is the first
    file's (or ``like``'s); files within 1e-6 of a pixel of it are on it
    (:func:`~mus_lab.cube.same_grid`), others are refused, or reprojected lazily onto it with
    a :class:`~mus_lab.errors.GridReprojectedWarning` when ``resampling`` is given.

    Nothing but the files' headers is read: each dask task reads one window (``chunks`` x
    ``chunks`` pixels) of one band of one file.

    Parameters
    ----------
    paths
        GeoTIFFs one per date (a sequence, a folder, or a glob pattern), or a mapping
        variable -> one multi-band GeoTIFF whose bands are the dates.
    dates
        The dates (anything ``pandas.Timestamp`` reads): one per file (per-date files, in the
        order given) or one per band (per-variable files). Default: read from the names.
    variables
        Variables to keep, in this order (band names, or mapping keys). Default: all.
    band_names
        Names of the bands of per-date files, overriding their descriptions.
    nodata
        The value marking no data in every file, overriding theirs (e.g. 0 for Sentinel-2
        digital numbers written without a nodata tag). Default: each file's own.
    chunks
        Spatial chunk side in pixels (default the ``chunk_size`` setting); one date per chunk.
    like
        Grid to open the series on (a ``GeoBox`` or a cube; its coordinates are copied).
        Default: the first file's grid (the first as given, or the mapping's first variable).
    resampling
        ``None`` (default): a file on another grid is refused. ``"bilinear"`` (continuous
        values) or ``"nearest"`` (classes): it is reprojected onto the grid, with a warning.

    Returns
    -------
    xarray.Dataset
        One float32 ``(time, y, x)`` variable per band (or per mapping key), dask-backed,
        ``time`` ascending (``datetime64[ns]``), with a ``spatial_ref`` coordinate and the
        odc-geo grid (``ds.odc.geobox``); ``attrs["source_files"]`` lists the files.

    Raises
    ------
    NoSeriesFilesError
        No file: an empty list, or a folder or pattern without GeoTIFF.
    UnreadableRasterError
        A file is missing or not a raster.
    SeriesDateError
        No date in a file name (or band), a wrong number of ``dates``, two on one day, or
        per-variable files with different dates.
    BandMismatchError
        Per-date files with different band counts or names, per-variable files with different
        band counts, ``band_names`` of the wrong length, or a variable that is not there.
    SeriesGridError
        A file on another grid (CRS, extent or resolution) and no ``resampling``, or a file
        without a CRS. It is also a :class:`~mus_lab.errors.GridMismatchError`.
    SeriesError
        ``band_names`` given with a mapping (its keys name the variables).

    Examples
    --------
    Two dates of a two-band series, written as a user would hold them:

    >>> import tempfile, rasterio
    >>> from pathlib import Path
    >>> from rasterio.transform import from_origin
    >>> folder = tempfile.TemporaryDirectory()
    >>> profile = dict(driver="GTiff", width=4, height=3, count=2, dtype="int16", nodata=0,
    ...                crs="EPSG:32633", transform=from_origin(500000, 4000030, 10, 10))
    >>> for day, red in (("2023-05-01", 900), ("2023-04-01", 0)):  # 0: no data
    ...     with rasterio.open(Path(folder.name) / f"s2_{day}.tif", "w", **profile) as dst:
    ...         dst.write(np.stack([np.full((3, 4), red), np.full((3, 4), 3000)]).astype("int16"))
    ...         dst.set_band_description(1, "red"); dst.set_band_description(2, "nir")
    >>> ds = open_series(folder.name)  # a folder, a pattern or a list of files
    >>> list(ds.data_vars), [str(t)[:10] for t in ds.time.values]
    (['red', 'nir'], ['2023-04-01', '2023-05-01'])
    >>> ds.red.dtype, ds.red.chunks is not None, int(ds.red.isnull().sum())
    (dtype('float32'), True, 12)
    >>> describe_grid(ds)
    'EPSG:32633, 3 x 4 px of 10 m, origin (500000, 4000030)'
    >>> folder.cleanup()

    The rest of the path to a feature cube::

        ds = cube.open_series("my_series/*.tif")
        filled = ard.gapfill(ds, ds.to_dataarray().isnull().any("variable"), dates=ds.time.values, nodata=np.nan)
        features = classify.feature_cube(filled)   # then classify.extract_samples, train, predict
    """
    size = resolve_chunks(chunks)
    moved: list[str] = []
    if isinstance(paths, Mapping):
        if band_names is not None:
            raise SeriesError(
                "band_names names the bands of per-date files; with a mapping variable -> file, "
                "the mapping's keys name the variables (and the bands are dates)."
            )
        ds = _open_per_variable(paths, dates, variables, nodata, size, like, resampling, moved)
    else:
        ds = _open_per_date(
            paths, dates, variables, band_names, nodata, size, like, resampling, moved
        )
    if moved:
        warnings.warn(
            f"{len(moved)} file(s) were reprojected onto the grid of the series "
            f"({describe_grid(ds)}, {resampling} resampling): {'; '.join(moved)}. Give "
            "files on one grid to avoid it.",
            GridReprojectedWarning,
            stacklevel=2,
        )
    return ds


def _open_per_date(
    paths: PathLike | Sequence[PathLike],
    dates: Sequence[Any] | None,
    variables: Sequence[str] | None,
    band_names: Sequence[str] | None,
    nodata: float | None,
    size: int,
    like: GeoBox | xr.Dataset | xr.DataArray | None,
    resampling: str | None,
    moved: list[str],
) -> xr.Dataset:
    files = _as_files(paths)
    rasters = [_inspect(p) for p in files]
    names = _band_names(rasters, band_names)
    keep = _keep(names, variables)
    labels = [r.name for r in rasters]
    days = (
        _given_dates(dates, len(files), "files")
        if dates is not None
        else [date_from_name(p) for p in files]
    )
    order = _order(days, labels)
    target = _target(like, rasters[0])
    first = "the grid given (like=)" if like is not None else labels[0]
    data: dict[str, list[dsa.Array]] = {v: [] for v in keep}
    for i in order:
        bands = [_band(rasters[i], names.index(v) + 1, size, nodata) for v in keep]
        placed = _onto(
            rasters[i], bands, target, chunks=size, resampling=resampling, first=first, moved=moved
        )
        for v, arr in zip(keep, placed, strict=True):
            data[v].append(arr)
    sources = [files[i] for i in order]
    return _assemble(data, [days[i] for i in order], target, like, sources)


def _open_per_variable(
    paths: Mapping[str, PathLike],
    dates: Sequence[Any] | None,
    variables: Sequence[str] | None,
    nodata: float | None,
    size: int,
    like: GeoBox | xr.Dataset | xr.DataArray | None,
    resampling: str | None,
    moved: list[str],
) -> xr.Dataset:
    if not paths:
        raise NoSeriesFilesError(
            "The mapping variable -> file is empty: give at least one variable's file."
        )
    keep = _keep([str(k) for k in paths], variables)
    rasters = {v: _inspect(os.fspath(paths[v])) for v in keep}
    first_var = keep[0]
    first = rasters[first_var]
    for v, r in rasters.items():
        if r.count != first.count:
            raise BandMismatchError(
                f"{r.name} ({v}) has {r.count} bands (dates) but {first.name} ({first_var}) has "
                f"{first.count}: every variable's file must hold the same dates."
            )
    if dates is not None:
        days = _given_dates(dates, first.count, "bands")
    else:
        missing = [i for i, d in enumerate(first.band_dates, start=1) if d is None]
        if missing:
            raise SeriesDateError(
                f"Band {missing[0]} of {first.name} carries no date ({_DATE_FORMS} in its "
                f"description or a 'date' metadata item): pass dates=[...] (one per band)."
            )
        days = [d for d in first.band_dates if d is not None]
        for v, r in rasters.items():
            if all(d is not None for d in r.band_dates) and list(r.band_dates) != days:
                raise SeriesDateError(
                    f"The dates of {r.name} ({v}) differ from those of {first.name}: give files "
                    "with the same dates in the same order, or pass dates=[...]."
                )
    order = _order(days, [f"band {i + 1} of {first.name}" for i in range(first.count)])
    target = _target(like, first)
    label = "the grid given (like=)" if like is not None else first.name
    data: dict[str, list[dsa.Array]] = {}
    for v, r in rasters.items():
        bands = [_band(r, i + 1, size, nodata) for i in order]
        data[v] = _onto(
            r, bands, target, chunks=size, resampling=resampling, first=label, moved=moved
        )
    sources = [r.path for r in rasters.values()]
    return _assemble(data, [days[i] for i in order], target, like, sources)


def _assemble(
    data: dict[str, list[dsa.Array]],
    days: list[np.datetime64],
    target: GeoBox,
    like: GeoBox | xr.Dataset | xr.DataArray | None,
    sources: list[str],
) -> xr.Dataset:
    if like is not None and not isinstance(like, GeoBox):
        ref = as_yx(like)
        ys, xs = ref["y"].values, ref["x"].values
    else:
        ys, xs = _axes(target)
    times = np.array(days, dtype="datetime64[ns]")
    ds = xr.Dataset(
        {v: (("time", "y", "x"), dsa.stack(arrays)) for v, arrays in data.items()},
        coords={"time": times, "y": ys, "x": xs},
    )
    ds = ds.odc.assign_crs(target.crs)
    ds.attrs = {"product": "user_series", "source_files": [str(s) for s in sources]}
    return ds
