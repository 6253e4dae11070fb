"""Pixel samples from reference polygons, split by polygon (IOTA²), with class balancing.

Extraction is chunk by chunk: for each spatial chunk of the feature cube that some polygon
touches, the polygons are rasterised (pixel centres) on that chunk's window and only their
pixels are read. Memory follows the chunk size and the number of samples, not the area.

The split is made **by polygon**, never by pixel, per class (and per region when asked): a
share ``train_ratio`` of each class's polygons trains, the rest validates, so validation pixels
never neighbour training pixels of the same parcel.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from shapely.geometry import box

from mus_lab import cube
from mus_lab.errors import SamplesError

__all__ = ["Samples", "balance", "extract_samples", "read_polygons", "split_by_polygon"]

PolygonsLike: TypeAlias = str | os.PathLike[str] | gpd.GeoDataFrame


def read_polygons(
    polygons: PolygonsLike,
    *,
    label: str = "code",
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read reference polygons (GeoPackage, Shapefile, GeoJSON... via pyogrio) and check them.

    Parameters
    ----------
    polygons
        Vector file path, or a GeoDataFrame (checked, not copied).
    label
        Field that must hold the class code.
    layer
        Layer of a multi-layer file (``"reference"`` in the sample scenario); default the
        first.

    Returns
    -------
    geopandas.GeoDataFrame
        As read, with a CRS and the ``label`` field.

    Raises
    ------
    SamplesError
        The file cannot be read, has no CRS, or lacks the ``label`` field.

    Examples
    --------
    >>> gdf = read_polygons(tiny.polygons, layer="reference")
    >>> "code" in gdf.columns, gdf.crs is not None
    (True, True)
    """
    if isinstance(polygons, gpd.GeoDataFrame):
        gdf = polygons
    else:
        try:
            gdf = gpd.read_file(polygons, layer=layer, engine="pyogrio")
        except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ...
            raise SamplesError(
                f"Cannot read reference polygons {polygons!s} (layer {layer!r}): {exc}. Give a "
                "vector file GDAL reads (GeoPackage, Shapefile, GeoJSON) and an existing layer."
            ) from exc
    if label not in gdf.columns:
        fields = [c for c in gdf.columns if c != gdf.geometry.name]
        raise SamplesError(
            f"The reference polygons have no label field {label!r}; their fields are {fields}. "
            "Pass label= (and name_field=) naming the class-code column."
        )
    if gdf.crs is None:
        raise SamplesError(
            "The reference polygons have no CRS: set it (gdf.set_crs(...)) or fix the file."
        )
    return gdf


@dataclass(frozen=True)
class Samples:
    """Labelled pixel samples.

    Attributes
    ----------
    X
        ``(n, n_features)`` float32 feature vectors.
    y
        ``(n,)`` class codes.
    polygon
        ``(n,)`` id of the polygon each pixel comes from.
    region
        ``(n,)`` region code per pixel (0 when no region field).
    row, col
        Pixel position on the cube's grid.
    features
        Feature names, in the order of ``X``'s columns.
    classes
        Class codes, ascending.
    class_names
        Name per class code.
    crs, resolution
        Grid of the cube the samples come from.
    info
        Extraction report (polygons used, dropped, pixels masked...).
    recipe
        How the feature cube was made (its ``attrs["mus_lab:recipe"]``) and, for polygons
        read from a file, where the references come from; :func:`train` records it.
    """

    X: np.ndarray
    y: np.ndarray
    polygon: np.ndarray
    region: np.ndarray
    row: np.ndarray
    col: np.ndarray
    features: tuple[str, ...]
    classes: tuple[int, ...]
    class_names: Mapping[int, str]
    crs: str
    resolution: tuple[float, float]
    info: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.y.size)

    def subset(self, keep: np.ndarray) -> Samples:
        """The samples that ``keep`` selects, with the same classes, features and grid.

        Parameters
        ----------
        keep
            Boolean mask of length ``len(self)`` or integer indices.

        Returns
        -------
        Samples
        """
        return replace(
            self,
            X=self.X[keep],
            y=self.y[keep],
            polygon=self.polygon[keep],
            region=self.region[keep],
            row=self.row[keep],
            col=self.col[keep],
        )

    def counts(self) -> pd.DataFrame:
        """Pixels and polygons per class.

        Returns
        -------
        pandas.DataFrame
            Indexed by class code (every class, 0 when absent): ``name``, ``pixels``,
            ``polygons``.
        """
        df = pd.DataFrame({"code": self.y, "polygon": self.polygon})
        out = df.groupby("code").agg(pixels=("polygon", "size"), polygons=("polygon", "nunique"))
        out = out.reindex(list(self.classes), fill_value=0)
        out.insert(0, "name", [self.class_names.get(c, str(c)) for c in out.index])
        return out


def _chunk_bounds(chunks: tuple[int, ...]) -> list[tuple[int, int]]:
    edges = np.concatenate([[0], np.cumsum(chunks)])
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _extract_block(
    block: np.ndarray,
    shapes: list[tuple[Any, int]],
    transform: Affine,
    r0: int,
    c0: int,
    all_touched: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import rasterio.features

    _, h, w = block.shape
    burned = rasterio.features.rasterize(
        shapes,
        out_shape=(h, w),
        transform=transform,
        fill=0,
        dtype="int32",
        all_touched=all_touched,
    )
    rows, cols = np.nonzero(burned)
    values = np.asarray(block[:, rows, cols]).T.astype("float32", copy=False)
    return values, burned[rows, cols] - 1, rows + r0, cols + c0


def extract_samples(
    features: xr.DataArray,
    polygons: PolygonsLike,
    *,
    label: str = "code",
    layer: str | None = None,
    id_field: str | None = "poly_id",
    name_field: str | None = "class_name",
    region_field: str | None = None,
    classes: Sequence[int] | None = None,
    ignore: Sequence[int] = (0,),
    legend: Mapping[int, str] | None = None,
    all_touched: bool = False,
) -> Samples:
    """Pixel samples of a feature cube inside reference polygons.

    Parameters
    ----------
    features
        Feature cube ``(feature, y, x)`` from :func:`feature_cube` (lazy; read chunk by chunk).
    polygons
        Vector file or GeoDataFrame; reprojected to the cube's CRS if needed (vectors only).
    label
        Field with the integer class code (1-254).
    layer
        Layer of a multi-layer file (``"reference"`` for the sample scenario).
    id_field
        Field identifying polygons (default ``poly_id``; the row number when absent).
    name_field
        Field with class names (when present), else ``legend``, else the code.
    region_field
        Field with an integer region (eco-region) per polygon, for per-region models.
    classes
        Class codes to keep; default every code of the polygons but ``ignore``. Every class
        kept must end with at least one valid pixel.
    ignore
        Codes to drop (default ``(0,)``, no data).
    legend
        Names per code, overriding ``name_field``.
    all_touched
        Burn every pixel a polygon touches instead of pixel centres.

    Returns
    -------
    Samples

    Raises
    ------
    SamplesError
        Label (or region) field missing, codes outside 1-254, no polygon overlapping the cube,
        or a class without any valid pixel (polygons smaller than a pixel, outside the cube,
        or only on masked pixels).
    """
    features = cube.standard_grid(features)
    gdf = read_polygons(polygons, label=label, layer=layer)
    if region_field is not None and region_field not in gdf.columns:
        raise SamplesError(
            f"No region field {region_field!r} in the polygons (fields: {list(gdf.columns)}): "
            "pass region_field=None or the eco-region column."
        )
    gbox = cube.geobox_of(features)
    crs = gbox.crs
    if crs is None:
        raise SamplesError("The feature cube has no CRS: load it with mus_lab.cube or assign one.")
    codes_all = pd.to_numeric(gdf[label], errors="coerce")
    if codes_all.isna().any() or (codes_all % 1 != 0).any():
        raise SamplesError(
            f"Field {label!r} must hold integer class codes; found {codes_all.unique()[:10]}."
        )
    gdf = gdf.assign(_code=codes_all.astype("int64"))
    wanted = (
        sorted(int(c) for c in classes)
        if classes is not None
        else sorted(int(c) for c in np.unique(gdf["_code"]) if int(c) not in set(ignore))
    )
    bad = [c for c in wanted if not 1 <= c <= 254]
    if bad:
        raise SamplesError(
            f"Class codes {bad} are outside 1-254 (0 = no data, 255 reserved in uint8 maps): recode them."
        )
    gdf = gdf[gdf["_code"].isin(wanted)]
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    names: dict[int, str] = {}
    if name_field and name_field in gdf.columns:
        names = {int(c): str(n) for c, n in zip(gdf["_code"], gdf[name_field], strict=True)}
    names.update({int(k): str(v) for k, v in (legend or {}).items()})
    names = {c: names.get(c, str(c)) for c in wanted}
    ids = (
        gdf[id_field].to_numpy()
        if id_field and id_field in gdf.columns
        else np.arange(1, len(gdf) + 1, dtype="int64")
    )
    regions = (
        pd.to_numeric(gdf[region_field]).to_numpy().astype("int64")
        if region_field
        else np.zeros(len(gdf), dtype="int64")
    )
    if not gdf.crs.equals(crs.to_wkt()):
        gdf = gdf.to_crs(crs.to_wkt())
    extent = box(*gbox.boundingbox)
    inside = gdf.geometry.intersects(extent).to_numpy()
    if not inside.any():
        raise SamplesError(
            f"None of the {len(gdf)} reference polygons (bounds "
            f"{tuple(np.round(gdf.total_bounds, 6 if crs.geographic else 1))}) overlaps the "
            f"cube ({cube.describe_grid(gbox)}): check the polygons' CRS and area, or load the "
            "cube over them."
        )
    geoms = gdf.geometry.to_numpy()
    sindex = gdf.sindex
    data = features.data
    chunks = data.chunks if hasattr(data, "chunks") and data.chunks else None
    ybounds = _chunk_bounds(chunks[1]) if chunks else [(0, features.sizes["y"])]
    xbounds = _chunk_bounds(chunks[2]) if chunks else [(0, features.sizes["x"])]
    tasks = []
    for i, (r0, r1) in enumerate(ybounds):
        for j, (c0, c1) in enumerate(xbounds):
            win = gbox[r0:r1, c0:c1]
            hits = sindex.query(box(*win.boundingbox), predicate="intersects")
            if hits.size == 0:
                continue
            shapes = [(geoms[k], int(k) + 1) for k in sorted(hits.tolist())]
            block = data.blocks[:, i, j] if chunks else data
            tasks.append(
                dask.delayed(_extract_block)(block, shapes, win.affine, r0, c0, all_touched)
            )
    parts = dask.compute(*tasks) if tasks else []
    nf = features.sizes["feature"]
    X = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, nf), "float32")
    k = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, "int64")
    rows = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, "int64")
    cols = np.concatenate([p[3] for p in parts]) if parts else np.empty(0, "int64")
    ok = np.isfinite(X).all(axis=1)
    y = gdf["_code"].to_numpy()[k]
    empty = [c for c in wanted if not np.any(ok & (y == c))]
    if empty:
        detail = ", ".join(
            f"{c} ({names[c]}: {int((gdf['_code'] == c).sum())} polygons, "
            f"{int(np.sum(y == c))} pixels, all masked)"
            if np.any(y == c)
            else f"{c} ({names[c]}: {int((gdf['_code'] == c).sum())} polygons, no pixel centre inside the cube)"
            for c in empty
        )
        raise SamplesError(
            f"No valid sample for class {detail}. Drop the class (classes=[...] without it), add "
            "polygons, use all_touched=True for small polygons, or cover more dates."
        )
    info = {
        "polygons": len(gdf),
        "polygons_outside": int((~inside).sum()),
        "pixels": int(ok.size),
        "pixels_masked": int((~ok).sum()),
        "label": label,
    }
    xres, yres = gbox.resolution.x, gbox.resolution.y
    return Samples(
        X=X[ok],
        y=y[ok].astype("int64"),
        polygon=np.asarray(ids)[k[ok]],
        region=regions[k[ok]],
        row=rows[ok].astype("int64"),
        col=cols[ok].astype("int64"),
        features=tuple(str(f) for f in features["feature"].values),
        classes=tuple(wanted),
        class_names=names,
        crs=f"EPSG:{crs.epsg}" if crs.epsg else crs.to_wkt(),
        resolution=(abs(float(xres)), abs(float(yres))),
        info=info,
        recipe=_recipe(features, polygons, label=label, layer=layer),
    )


def _recipe(
    features: xr.DataArray, polygons: Any, *, label: str, layer: str | None
) -> dict[str, Any]:
    from mus_lab.classify._options import recipe_of

    recipe = recipe_of(features)
    if recipe and isinstance(polygons, str | os.PathLike):
        recipe.update(polygons=os.fspath(polygons), label=label, layer=layer)
    return recipe


def split_by_polygon(
    samples: Samples,
    *,
    train_ratio: float = 0.5,
    seed: int = 0,
) -> tuple[Samples, Samples]:
    """Split samples into training and validation sets **by polygon** (IOTA²'s rule).

    Per class (and per region), the polygons are shuffled with ``seed`` and
    ``round(train_ratio * n)`` of them train (at least one each side when a class has two or
    more polygons; a single polygon trains).

    Parameters
    ----------
    samples
        Samples from :func:`extract_samples`.
    train_ratio
        Share of each class's polygons that trains, strictly between 0 and 1.
    seed
        Seed of the shuffle: the same seed gives the same split.

    Returns
    -------
    (Samples, Samples)
        Training and validation samples; no polygon is in both.

    Raises
    ------
    SamplesError
        ``train_ratio`` is not in (0, 1).
    """
    if not 0.0 < train_ratio < 1.0:
        raise SamplesError(f"train_ratio must be in (0, 1), got {train_ratio}.")
    rng = np.random.default_rng(seed)
    train_polys: set[Any] = set()
    table = pd.DataFrame({"polygon": samples.polygon, "code": samples.y, "region": samples.region})
    groups = table.drop_duplicates("polygon").groupby(["region", "code"], sort=True)
    for _, grp in groups:
        polys = np.sort(grp["polygon"].to_numpy())
        rng.shuffle(polys)
        n = polys.size
        n_train = 1 if n == 1 else int(np.clip(round(train_ratio * n), 1, n - 1))
        train_polys.update(polys[:n_train].tolist())
    is_train = np.isin(samples.polygon, list(train_polys))
    return samples.subset(is_train), samples.subset(~is_train)


def balance(samples: Samples, *, max_per_class: int, seed: int = 0) -> Samples:
    """At most ``max_per_class`` pixels per class (and region), drawn at random with ``seed``.

    Parameters
    ----------
    samples
        Samples to thin (usually the training part of :func:`split_by_polygon`).
    max_per_class
        Largest number of pixels kept per class in each region (at least 1); smaller
        classes are kept whole.
    seed
        Seed of the draw.

    Returns
    -------
    Samples
        In their original order.

    Raises
    ------
    SamplesError
        ``max_per_class`` is below 1.
    """
    if max_per_class < 1:
        raise SamplesError(f"max_per_class must be >= 1, got {max_per_class}.")
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for reg in np.unique(samples.region):
        for c in samples.classes:
            idx = np.flatnonzero((samples.y == c) & (samples.region == reg))
            if idx.size > max_per_class:
                idx = np.sort(rng.choice(idx, max_per_class, replace=False))
            keep.append(idx)
    return samples.subset(np.sort(np.concatenate(keep)))
