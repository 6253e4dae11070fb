"""A small EODMS ``rcm-ard`` item with its COGs, laid out as the real ones (for tests).

No full ``rcm-ard`` item JSON is in the shared real data; what is there are the executed EODMS
notebooks, whose outputs print the asset table (key, title, roles), the ``rr`` asset as a
dict, and the item properties (through stackstac's coordinates). :func:`rcm_ard_item_dict`
rebuilds the item from those printed facts (it is *reconstructed*, as the data's provenance
note asks tests to say); :func:`write_rcm_ard_item` writes small COGs for its data assets
(float32, nodata 0, EPSG:32618, 20 m; ``rrrl`` two bands, real then imaginary; ``data_mask``
uint8 bit field) and rewrites the hrefs to them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RCM_ARD_ID", "rcm_ard_item_dict", "write_rcm_ard_item"]

#: An id printed by the notebook (``order_key`` of the Ottawa item of 2025-05-30).
RCM_ARD_ID = "RCM1_OK3555463_PK3630004_1_SC30MCPB_20250530_225209_CH_CV_MLC"
_BASE = "https://rcm-ceos-ard.s3.ca-central-1.amazonaws.com/MLC/2025/05/30/" + RCM_ARD_ID
_STEM = "RCM1_OK3555463_PK3630004_1_SC30MCPB_20250530_225209"
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
#: (key, title, roles, file suffix) as the notebook's asset table prints them.
ASSETS: tuple[tuple[str, str, list[str] | None, str], ...] = (
    ("rl", "Backscatter Measurements RL Polarization", ["data", "gamma()"], "RL.tif"),
    ("rr", "Backscatter Measurements RR Polarization", ["data", "gamma()"], "RR.tif"),
    (
        "rrrl",
        "Normalized Polarimetric Radar Covariance Matrix (CovMat)",
        ["data", "covmat"],
        "RRRL.tif",
    ),
    ("metadata", "ARD Product Metadata", ["metadata"], "metadata.xml"),
    ("data_mask", "Data Mask Image", ["data", "data-mask"], "bitmask.tif"),
    ("thumbnail", "Thumbnail", ["thumbnail"], "thumbnail.png"),
    ("eula_license", "EULA", ["license"], "EULA.pdf"),
    ("rl_thumbnail", "Backscatter RL Polarization Quicklook", None, "RL_quicklook.tif"),
    ("rr_thumbnail", "Backscatter RR Polarization Quicklook", None, "RR_quicklook.tif"),
    (
        "local_inc_angle",
        "Local Incident Angle Image",
        ["data", "local-incidence-angle"],
        "localIncidenceAngle.tif",
    ),
    ("gamma_to_sigma_ratio", "Gamma-to-Sigma Ratio Image", ["data"], "gammaToSigmaRatio.tif"),
    ("local_contributing_area", "Scattering Area Image", ["data"], "scatteringArea.tif"),
)
_RASTER_BANDS = {"nodata": 0, "sampling": "RasterPixelIsArea", "data_type": "Float"}


def rcm_ard_item_dict() -> dict[str, Any]:
    """The reconstructed ``rcm-ard`` STAC item (real hrefs, properties and asset table)."""
    assets: dict[str, Any] = {}
    for key, title, roles, suffix in ASSETS:
        a: dict[str, Any] = {"href": f"{_BASE}/{_STEM}_{suffix}", "title": title}
        if suffix.endswith(".tif"):
            a["type"] = _COG
        if roles is not None:
            a["roles"] = roles
        if key in ("rr", "rl"):
            a["raster:bands"] = [dict(_RASTER_BANDS)]
        assets[key] = a
    props = {
        "datetime": "2025-05-30T22:52:09.459926Z",
        "start_datetime": "2025-05-30T22:52:09.459926Z",
        "end_datetime": "2025-05-30T22:52:21.805357Z",
        "title": RCM_ARD_ID,
        "order_key": RCM_ARD_ID,
        "created": "2025-05-31T12:45:30.456386+00:00",
        "sar:polarizations": ["CH", "CV", "XC"],
        "sar:product_type": "MLC",
        "sar:instrument_mode": "Medium Resolution 30m",
        "sar:frequency_band": "C",
        "sar:center_frequency": 5.405,
        "sar:looks_range": 2,
        "sar:looks_azimuth": 2,
        "sar:pixel_spacing_range": 7.9,
        "sar:pixel_spacing_azimuth": 22.7,
        "sar:observation_direction": "Right",
        "sat:orbit_state": "Ascending",
        "sat:relative_orbit": 30,
        "sat:absolute_orbit": 32508.0,
        "product_row_spacing": 20.0,
        "product_column_spacing": 20.0,
        "processing:level": "l2",
        "processing:facility": "SHUB",
        "processing:software": {"RCM PGS": "7.06"},
        "ceosard:type": "radar",
        "ceosard:specification": "NRB - POL",
        "ceosard:specification_version": "1.0",
        "ard_proc_version": "1.1.2",
        "rcm_uuid": "eb5d7b28-2777-5539-9d16-010891151aa7",
        "sequence_id": 32738915,
        "version": "1.2",
        "proj:epsg": 32618,
    }
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
            "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/ceos-ard/v0.2.0/schema.json",
        ],
        "id": "8025cf12-53cf-4ca5-93cb-0210e675dada",
        "collection": "rcm-ard",
        "geometry": None,
        "bbox": None,
        "properties": props,
        "links": [],
        "assets": assets,
    }


def write_rcm_ard_item(
    folder: str | Path,
    *,
    shape: tuple[int, int] = (24, 32),
    origin: tuple[float, float] = (424100.0, 5040740.0),
    seed: int = 0,
) -> tuple[Any, dict[str, np.ndarray]]:
    """Write COGs for the reconstructed item's data assets and return the item, hrefs local.

    Parameters
    ----------
    folder : str or pathlib.Path
        Where the COGs and ``item.json`` go.
    shape : (int, int), optional
        Rows, columns of every raster (20 m pixels).
    origin : (float, float), optional
        Upper-left corner in EPSG:32618 (the notebook's Ottawa stack starts there).
    seed : int, optional
        Random seed of the values.

    Returns
    -------
    (pystac.Item, dict)
        The item, and the arrays written by asset key (``rrrl`` as a complex array).
    """
    import pystac
    import rasterio
    from affine import Affine

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = shape
    rr = rng.gamma(4.0, 0.02, shape).astype(np.float32)
    rl = rng.gamma(4.0, 0.06, shape).astype(np.float32)
    # a covariance term no larger than sqrt(rr rl) (|rho| <= 0.8)
    rho = 0.8 * rng.random(shape) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
    rrrl = (rho * np.sqrt(rr * rl)).astype(np.complex64)
    mask = np.zeros(shape, np.uint8)
    mask[:, :3] = 1  # bit 0: no data at the swath edge
    mask[5, 10] = 2  # bit 1: layover
    mask[6, 11] = 4  # bit 2: shadow
    mask[7, 12] = 8  # bit 3: water (not a validity bit)
    rr[:, :3] = rl[:, :3] = 0.0
    rrrl[:, :3] = 0
    arrays: dict[str, np.ndarray] = {
        "rr": rr,
        "rl": rl,
        "rrrl": rrrl,
        "data_mask": mask,
        "local_inc_angle": rng.uniform(20, 45, shape).astype(np.float32),
        "gamma_to_sigma_ratio": rng.uniform(0.9, 1.3, shape).astype(np.float32),
        "local_contributing_area": rng.uniform(300, 500, shape).astype(np.float32),
    }
    transform = Affine(20.0, 0.0, origin[0], 0.0, -20.0, origin[1])
    d = rcm_ard_item_dict()
    for key, arr in arrays.items():
        path = folder / Path(d["assets"][key]["href"]).name
        bands = [arr.real, arr.imag] if np.iscomplexobj(arr) else [arr]
        dtype = "float32" if np.iscomplexobj(arr) else arr.dtype.name
        profile = dict(
            driver="COG",
            width=w,
            height=h,
            count=len(bands),
            dtype=dtype,
            crs="EPSG:32618",
            transform=transform,
            nodata=0,
            compress="deflate",
        )
        with rasterio.open(path, "w", **profile) as dst:
            for i, b in enumerate(bands, start=1):
                dst.write(b.astype(dtype), i)
            if key == "rrrl":
                dst.set_band_description(1, "real")
                dst.set_band_description(2, "imaginary")
        d["assets"][key]["href"] = str(path)
    west, north = origin
    east, south = west + 20.0 * w, north - 20.0 * h
    from pyproj import Transformer

    to_ll = Transformer.from_crs(32618, 4326, always_xy=True)
    xs, ys = to_ll.transform([west, east, east, west], [north, north, south, south])
    ring = [[float(x), float(y)] for x, y in zip(xs, ys, strict=True)]
    d["geometry"] = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    d["bbox"] = [min(xs), min(ys), max(xs), max(ys)]
    (folder / "item.json").write_text(json.dumps(d, indent=1))
    return pystac.Item.from_dict(d), arrays
