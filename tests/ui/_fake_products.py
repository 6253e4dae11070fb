"""Products that follow the stage contracts, made from the scenario's truth, for the UI tests.

The real products come from the land-cover, fusion and flood stages; these stand-ins have the
same collection ids, variables, dtypes and nodata values (see the contracts in the helpers'
rules and docs/design/0007-user-faces.md), so the dashboards can be built and tested before
those stages are merged. Values are the truth with some disagreement added.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import rioxarray
import xarray as xr
from odc.geo.xr import assign_crs

from mus_lab import ard
from mus_lab import catalog as cat

N_CLASSES = 7


def _truth(catalog: Path) -> tuple[xr.DataArray, list[pystac.Item]]:
    lc_item = next(iter(cat.search(catalog, collections="landcover-truth")))
    lc = rioxarray.open_rasterio(lc_item.assets["landcover"].get_absolute_href()).squeeze(
        "band", drop=True
    )
    floods = sorted(cat.search(catalog, collections="flood-truth"), key=lambda it: it.datetime)
    return lc.load(), floods


def _grid_like(lc: xr.DataArray, values: np.ndarray, name: str) -> xr.DataArray:
    out = xr.DataArray(values, dims=lc.dims, coords=lc.coords, name=name)
    return out.drop_vars([c for c in out.coords if c not in ("x", "y", "spatial_ref")])


def write_landcover(catalog: Path, *, seed: int = 0) -> None:
    """landcover-optical, landcover-radar and landcover-fused from the land-cover truth."""
    lc, _ = _truth(catalog)
    rng = np.random.default_rng(seed)
    truth = lc.values.astype("uint8")
    shape = truth.shape
    maps = {}
    for source, error in (("optical", 0.1), ("radar", 0.25)):
        noisy = np.where(rng.random(shape) < error, rng.integers(1, N_CLASSES + 1, shape), truth)
        noisy = np.where(truth == 0, 0, noisy).astype("uint8")
        probs = rng.dirichlet(np.ones(N_CLASSES), size=shape).astype("float32")  # (y, x, class)
        probs[..., :] *= 0.4
        idx = np.clip(noisy.astype(int) - 1, 0, N_CLASSES - 1)
        np.put_along_axis(probs, idx[..., None], 0.6 + probs.take(0, axis=-1)[..., None], axis=-1)
        probs /= probs.sum(-1, keepdims=True)
        confidence = np.where(truth == 0, 255, np.round(probs.max(-1) * 100)).astype("uint8")
        ordered = np.sort(probs, axis=-1)
        margin = np.where(truth == 0, 255, np.round((ordered[..., -1] - ordered[..., -2]) * 100))
        probability = xr.DataArray(
            np.moveaxis(probs, -1, 0),
            dims=("class", *lc.dims),
            coords={"class": np.arange(1, N_CLASSES + 1), "y": lc.y, "x": lc.x},
            name="probability",
        ).rio.write_crs(lc.rio.crs)
        ds = xr.Dataset(
            {
                "classification": _grid_like(lc, noisy, "classification"),
                "confidence": _grid_like(lc, confidence, "confidence"),
                "margin": _grid_like(lc, margin.astype("uint8"), "margin"),
                "probability": probability,
            }
        )
        ds["classification"].attrs["nodata"] = 0
        ds["confidence"].attrs["nodata"] = 255
        ds["margin"].attrs["nodata"] = 255
        ard.write(
            assign_crs(ds, str(lc.rio.crs)),
            catalog,
            f"landcover-{source}",
            overwrite=True,
            level="L3-landcover",
        )
        maps[source] = noisy
    agree = maps["optical"] == maps["radar"]
    fused = np.where(
        agree, maps["optical"], np.where(rng.random(shape) < 0.1, 255, maps["optical"])
    )
    fused = np.where(truth == 0, 0, fused).astype("uint8")
    belief = np.where(agree, 0.8, 0.45).astype("float32") + rng.uniform(0, 0.1, shape).astype(
        "float32"
    )
    plaus = np.minimum(belief + np.where(agree, 0.1, 0.35), 1).astype("float32")
    conflict = np.where(agree, 0.05, 0.4).astype("float32")
    fused_ds = xr.Dataset(
        {
            "fused_class": _grid_like(lc, fused, "fused_class"),
            "belief": _grid_like(lc, belief, "belief"),
            "plausibility": _grid_like(lc, plaus, "plausibility"),
            "conflict": _grid_like(lc, conflict, "conflict"),
            "ignorance": _grid_like(lc, (plaus - belief).astype("float32"), "ignorance"),
            "confidence": _grid_like(lc, belief, "confidence"),
            "agreement": _grid_like(lc, np.where(agree, 1, 3).astype("uint8"), "agreement"),
        }
    )
    fused_ds["fused_class"].attrs["nodata"] = 0
    ard.write(
        assign_crs(fused_ds, str(lc.rio.crs)),
        catalog,
        "landcover-fused",
        overwrite=True,
        level="L3-fusion",
    )


def write_s2_ard(catalog: Path, *, n_dates: int = 3) -> None:
    """A few dates of ``s2-l2a-ard`` (red, nir, valid), as notebook 02 writes it."""
    lc, _ = _truth(catalog)
    nir_of = np.array([0, 0.35, 0.30, 0.28, 0.02, 0.15, 0.12, 0.25], dtype="float32")
    red_of = np.array([0, 0.08, 0.05, 0.03, 0.03, 0.05, 0.12, 0.20], dtype="float32")
    times = pd.date_range("2022-05-01", periods=n_dates, freq="10D").to_numpy()
    coords = {"time": times, "y": lc.y, "x": lc.x}
    codes = lc.values.astype(int)
    ramp = np.linspace(0.8, 1.2, n_dates, dtype="float32")[:, None, None]
    ds = xr.Dataset(
        {
            "red": (("time", "y", "x"), np.broadcast_to(red_of[codes], (n_dates, *codes.shape))),
            "nir": (("time", "y", "x"), nir_of[codes] * ramp),
            "valid": (("time", "y", "x"), np.ones((n_dates, *codes.shape), dtype=bool)),
        },
        coords=coords,
    )
    ard.write(assign_crs(ds, str(lc.rio.crs)), catalog, "s2-l2a-ard", overwrite=True)


def write_flood(catalog: Path, *, n_dates: int = 6) -> pd.DataFrame:
    """flood-extent (some SAR dates around the peak) and flood-risk with its zone table."""
    lc, floods = _truth(catalog)
    peak = max(
        floods,
        key=lambda it: float(
            (rioxarray.open_rasterio(it.assets["flood"].get_absolute_href()) == 1).mean()
        ),
    )
    i = floods.index(peak)
    chosen = floods[max(0, i - n_dates // 2) : max(0, i - n_dates // 2) + n_dates]
    layers, times = [], []
    for item in chosen:
        truth = (
            rioxarray.open_rasterio(item.assets["flood"].get_absolute_href())
            .squeeze("band", drop=True)
            .values
        )
        layers.append(truth)
        times.append(np.datetime64(item.datetime.replace(tzinfo=None), "ns"))
    stack = np.stack(layers)
    water = np.where(stack == 255, 255, (stack >= 1)).astype("uint8")
    flood = np.where(stack == 255, 255, stack == 1).astype("uint8")
    likelihood = np.where(stack == 255, 255, np.where(stack == 1, 85, 8)).astype("uint8")
    coords = {"time": times, "y": lc.y, "x": lc.x}
    extent = xr.Dataset(
        {
            n: xr.DataArray(v, dims=("time", "y", "x"), coords=coords).rio.write_crs(lc.rio.crs)
            for n, v in (("water", water), ("flood", flood), ("likelihood", likelihood))
        }
    )
    for n in extent.data_vars:
        extent[n].attrs["nodata"] = 255
    ard.write(
        assign_crs(extent, str(lc.rio.crs)),
        catalog,
        "flood-extent",
        overwrite=True,
        level="L3-flood",
    )

    valid = (flood != 255).sum(0)
    frequency = np.where(valid > 0, (flood == 1).sum(0) / np.maximum(valid, 1), np.nan)
    hazard = frequency.astype("float32")
    risk = np.clip(hazard * np.where(lc.values == 6, 1.0, 0.6), 0, 1).astype("float32")
    risk_class = np.where(lc.values == 0, 0, 1 + np.minimum((risk * 5).astype(int), 4)).astype(
        "uint8"
    )
    summary = xr.Dataset(
        {
            "max_extent": _grid_like(lc, (flood == 1).any(0).astype("uint8"), "max_extent"),
            "frequency": _grid_like(lc, frequency.astype("float32"), "frequency"),
            "n_valid": _grid_like(lc, valid.astype("uint16"), "n_valid"),
            "hazard": _grid_like(lc, hazard, "hazard"),
            "risk": _grid_like(lc, risk, "risk"),
            "risk_class": _grid_like(lc, risk_class, "risk_class"),
        }
    )
    summary["risk_class"].attrs["nodata"] = 0
    ard.write(
        assign_crs(summary, str(lc.rio.crs)),
        catalog,
        "flood-risk",
        overwrite=True,
        level="L4-flood-risk",
    )

    zone = np.where(lc.x.values[None, :] < float(lc.x.mean()), "west", "east")
    zone = np.broadcast_to(zone, lc.shape)
    pixel_ha = 0.01
    rows = []
    legend = {
        1: "crops",
        2: "grassland",
        3: "forest",
        4: "water",
        5: "wetland",
        6: "urban",
        7: "bare",
    }
    max_flood = (flood == 1).any(0)
    for z in ("west", "east"):
        for code, name in legend.items():
            m = (zone == z) & (lc.values == code)
            flooded = float((m & max_flood).sum() * pixel_ha)
            rows.append(
                (
                    z,
                    code,
                    name,
                    flooded,
                    flooded * 0.85,
                    flooded * 1.2,
                    float((m & (risk_class >= 3)).sum() * pixel_ha),
                )
            )
    zones = pd.DataFrame(
        rows,
        columns=[
            "zone",
            "class_code",
            "class_name",
            "flooded_ha",
            "flooded_ha_low",
            "flooded_ha_high",
            "at_risk_ha",
        ],
    )
    _add_zone_asset(catalog, zones)
    return zones


def _add_zone_asset(catalog: Path, zones: pd.DataFrame) -> None:
    root = Path(catalog).parent if Path(catalog).suffix == ".json" else Path(catalog)
    item_path = next((root / "flood-risk").glob("*summary*/*.json"))
    zones.to_csv(item_path.parent / "zones.csv", index=False)
    item = pystac.Item.from_file(str(item_path))
    item.add_asset("zones", pystac.Asset("./zones.csv", media_type="text/csv", roles=["data"]))
    item.properties["updated"] = dt.datetime.now(dt.UTC).isoformat()
    item.save_object(include_self_link=False, dest_href=str(item_path))
    # The catalog cache is keyed by the root's modification time: touch it.
    (root / "catalog.json").touch()
