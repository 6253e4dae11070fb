"""Reference polygons: eroded patches of one class, spread over the four quadrants."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio.features
from affine import Affine
from numpy.typing import NDArray
from scipy import ndimage
from shapely.geometry import shape

from mus_lab.sample._fields import rng_for
from mus_lab.sample._landscape import CROPS, GRASS, Landscape
from mus_lab.sample._params import LEGEND

__all__ = ["reference_polygons"]


def _erode(label: NDArray[np.int32], iterations: int) -> NDArray[np.int32]:
    """Keep a pixel only where its 4 neighbours carry the same label."""
    for _ in range(iterations):
        keep = np.zeros(label.shape, bool)
        core = label[1:-1, 1:-1]
        keep[1:-1, 1:-1] = (
            (core == label[:-2, 1:-1])
            & (core == label[2:, 1:-1])
            & (core == label[1:-1, :-2])
            & (core == label[1:-1, 2:])
        )
        label = np.where(keep, label, 0).astype(np.int32)
    return label


#: The class a mislabelled reference polygon gets: its most confusable neighbour.
_CONFUSED_WITH = {1: 2, 2: 1, 3: 5, 4: 5, 5: 2, 6: 7, 7: 6}


def reference_polygons(
    land: Landscape, transform: Affine, crs: str, *, label_noise: float = 0.0
) -> gpd.GeoDataFrame:
    """Polygons of pure, eroded patches per class (parcels for crops and grassland).

    Patches are cut by a square grid (and by the quadrants, which give ``region`` 1-4)
    so every class yields many polygons, from which up to a fixed number per class are
    drawn evenly over the regions. Polygons drawn from the seed and covering up to a share
    ``label_noise`` of the reference area carry the code of a confusable class in ``code`` and ``class_name``, as reference
    data do; ``code_true`` keeps the class of the landscape.
    """
    n = land.size
    tile = int(np.clip(n / 24, 6, 40))
    half = n // 2
    lc = land.landcover.astype(np.int32)
    label = np.empty((n, n), np.int32)
    cols = np.arange(n)
    n_tiles = -(-n // tile)
    offset = int(land.parcel.max()) + 1
    for r0 in range(0, n, 1024):
        r1 = min(n, r0 + 1024)
        rows = np.arange(r0, r1)[:, None]
        region = 1 + (rows >= half) * 2 + (cols[None, :] >= half)
        tile_id = offset + (rows // tile) * n_tiles + cols[None, :] // tile
        ag = (lc[r0:r1] == CROPS) | (lc[r0:r1] == GRASS)
        cell = np.where(ag, land.parcel[r0:r1], tile_id)
        label[r0:r1] = (cell * 4 + region - 1) * 8 + lc[r0:r1]
    label = _erode(label, 1 if n < 256 else 2)
    uniq, counts = np.unique(label[label > 0], return_counts=True)
    uniq = uniq[counts >= (6 if n < 256 else 12)]
    rng = rng_for(land.seed, 5)
    per_class = int(np.clip(n // 6, 12, 400))
    chosen = []
    for code in range(1, 8):
        cands = rng.permutation(uniq[uniq % 8 == code])
        region = (cands // 8) % 4
        # round-robin over regions: rank within its region first, then region
        rank = np.zeros(cands.size, np.int64)
        for reg in range(4):
            sel = region == reg
            rank[sel] = np.arange(sel.sum())
        chosen.append(cands[np.lexsort((region, rank))][:per_class])
    picked = np.sort(np.concatenate(chosen))
    idx = np.clip(np.searchsorted(picked, label), 0, max(picked.size - 1, 0))
    compact = np.where((picked.size > 0) & (picked[idx] == label), idx + 1, 0).astype(np.int32)
    records = []
    for k, sl in enumerate(ndimage.find_objects(compact)):
        if sl is None:
            continue
        mask = (compact[sl] == k + 1).astype(np.uint8)
        win = transform @ Affine.translation(sl[1].start, sl[0].start)
        geoms = [shape(g) for g, v in rasterio.features.shapes(mask, mask=mask > 0, transform=win)]
        geom = max(geoms, key=lambda g: g.area)
        lab = int(picked[k])
        records.append((lab % 8, (lab // 8) % 4 + 1, geom))
    true = np.array([r[0] for r in records], dtype=np.int64)
    codes = true.copy()
    # Mislabel whole polygons, in a random order, until label_noise of the reference area;
    # only between classes of at least 4 polygons (a tiny scene's rare class stays as it is).
    area = np.array([r[2].area for r in records])
    count = np.bincount(true, minlength=8)
    budget, used = label_noise * area.sum(), 0.0
    for k in rng_for(land.seed, 7).permutation(true.size):
        common = min(count[true[k]], count[_CONFUSED_WITH[int(true[k])]]) >= 4
        if common and used + area[k] <= budget:
            codes[k] = _CONFUSED_WITH[int(true[k])]
            used += area[k]
    return gpd.GeoDataFrame(
        {
            "poly_id": np.arange(1, len(records) + 1, dtype=np.int64),
            "code": codes,
            "class_name": [LEGEND[int(c)] for c in codes],
            "region": np.array([r[1] for r in records], dtype=np.int64),
            "code_true": true,
        },
        geometry=[r[2] for r in records],
        crs=crs,
    )
