"""Builders of small Sentinel-2 L2A products in the providers' real layouts (tests only).

SAFE: the real ``MTD_MSIL2A.xml`` / ``MTD_TL.xml`` of a product (../shared/data), its real
``IMAGE_FILE`` list and tile origin, with small synthetic JPEG2000 rasters (lossless) in place
of the 110 km images. MAJA: the THEIA folder layout with a minimal ``*_MTD_ALL.xml`` holding the
real tag names (no real MAJA metadata is in the shared data) and small GeoTIFFs.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
import zlib
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

L2A = "s2_l2a_product_metadata/ESA/SENTINEL-2/L2A/data"
N0400 = "S2A_MSIL2A_20220214T070051_N0400_R120_T38KQA_20220214T085403.SAFE"
N0214 = "S2B_MSIL2A_20210208T043939_N0214_R033_T49WDM_20210208T061027.SAFE"
SIDE_M = 200  # product extent: 200 m x 200 m (20 x 20 px at 10 m)
BANDS_10M = ("B02", "B03", "B04", "B08")
BANDS_20M = ("B05", "B06", "B07", "B8A", "B11", "B12")


def dn_pattern(band: str, res: int, seed: int = 0) -> np.ndarray:
    """Deterministic DN (uint16) per band, with zeros (nodata) in the first row."""
    n = SIDE_M // res
    rng = np.random.default_rng(zlib.crc32(f"{band}{res}{seed}".encode()))
    out = rng.integers(1, 12000, size=(n, n)).astype("uint16")
    out[0, :3] = 0
    return out


def _tile_grid(tl: Path) -> tuple[int, float, float]:
    root = ET.parse(tl).getroot()
    epsg = int(next(root.iter("HORIZONTAL_CS_CODE")).text.split(":")[1])
    pos = next(iter(root.iter("Geoposition")))
    return epsg, float(pos.find("ULX").text), float(pos.find("ULY").text)


def _write(path: Path, data: np.ndarray, epsg: int, ulx: float, uly: float, res: int, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": kw.pop("driver", "GTiff"),
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype,
        "crs": f"EPSG:{epsg}",
        "transform": from_origin(ulx, uly, res, res),
        **kw,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def make_safe(
    real_data: Path,
    out: Path,
    product: str = N0400,
    *,
    zipped: bool = True,
    drop: str | None = None,
) -> tuple[Path, dict[str, np.ndarray], np.ndarray]:
    """A SAFE (zip or folder) with the real metadata of ``product``: (path, DN by band, SCL)."""
    src = real_data / L2A / product
    safe = out / product
    shutil.copytree(src, safe)
    epsg, ulx, uly = _tile_grid(next(safe.glob("GRANULE/*/MTD_TL.xml")))
    listed = [e.text for e in ET.parse(safe / "MTD_MSIL2A.xml").getroot().iter("IMAGE_FILE")]
    dns: dict[str, np.ndarray] = {}
    scl = np.zeros((SIDE_M // 20, SIDE_M // 20), "uint8")
    for stem in listed:
        m = re.search(r"_(B\d[\dA]|SCL)_(\d\d)m$", stem)
        if m is None or (m[1], int(m[2])) not in {
            *((b, 10) for b in BANDS_10M),
            *((b, 20) for b in BANDS_20M),
            ("SCL", 20),
        }:
            continue
        if drop and drop in stem:
            continue
        res = int(m[2])
        if m[1] == "SCL":
            data = scl = np.resize(np.arange(12, dtype="uint8"), scl.shape)
        else:
            data = dns[m[1]] = dn_pattern(m[1], res)
        _write(safe / f"{stem}.jp2", data, epsg, ulx, uly, res,
               driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES")  # fmt: skip
    if not zipped:
        return safe, dns, scl
    archive = out / f"{product.removesuffix('.SAFE')}.SAFE.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(safe.rglob("*")):
            zf.write(f, f.relative_to(out).as_posix())
    shutil.rmtree(safe)
    return archive, dns, scl


MAJA_ID = "SENTINEL2B_20230105-105347-123_L2A_T31TCJ_C_V3-1"
MAJA_MTD = """<?xml version="1.0" encoding="UTF-8"?>
<Muscate_Metadata_Document>
  <Dataset_Identification><IDENTIFIER>{id}</IDENTIFIER></Dataset_Identification>
  <Product_Characteristics><ACQUISITION_DATE>2023-01-05T10:53:47.123Z</ACQUISITION_DATE>
    <PLATFORM>SENTINEL2B</PLATFORM></Product_Characteristics>
  <Radiometric_Informations>
    {quant}
    <Special_Values_List>
      {nodata}
      <SPECIAL_VALUE name="water_vapor_content_nodata">0</SPECIAL_VALUE>
    </Special_Values_List>
  </Radiometric_Informations>
</Muscate_Metadata_Document>
"""


def make_maja(out: Path, *, complete: bool = True) -> tuple[Path, dict[str, np.ndarray]]:
    """A THEIA MAJA L2A folder (EPSG:32631, T31TCJ): (path, arrays by file kind)."""
    root = out / MAJA_ID
    epsg, ulx, uly = 32631, 300000.0, 4900020.0
    quant = "<REFLECTANCE_QUANTIFICATION_VALUE>10000</REFLECTANCE_QUANTIFICATION_VALUE>"
    nodata = '<SPECIAL_VALUE name="nodata">-10000</SPECIAL_VALUE>'
    root.mkdir(parents=True)
    (root / f"{MAJA_ID}_MTD_ALL.xml").write_text(
        MAJA_MTD.format(id=MAJA_ID, quant=quant if complete else "", nodata=nodata)
    )
    arrays: dict[str, np.ndarray] = {}
    for band in ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A", "B11", "B12"):
        res = 10 if band in ("B2", "B3", "B4", "B8") else 20
        rng = np.random.default_rng(len(band) * 7 + res + int(re.sub(r"\D", "", band)))
        data = rng.integers(-200, 9000, size=(SIDE_M // res,) * 2).astype("int16")
        data[0, :3] = -10000
        arrays[band] = data
        _write(root / f"{MAJA_ID}_FRE_{band}.tif", data, epsg, ulx, uly, res, nodata=-10000)
        _write(root / f"{MAJA_ID}_SRE_{band}.tif", data, epsg, ulx, uly, res, nodata=-10000)
    n = SIDE_M // 10
    masks = {
        "CLM": np.resize(np.array([0, 1 << 1, 1 << 4, 1 << 5, 1 << 7, 0], "uint8"), (n, n)),
        "MG2": np.resize(np.array([1, 0, 1 << 2, 1 << 3, 1 << 4, 0, 0], "uint8"), (n, n)),
        "SAT": np.resize(np.array([0, 0, 0, 0, 0, 0, 0, 1 << 2], "uint8"), (n, n)),
        "EDG": np.resize(np.array([0] * 10 + [1], "uint8"), (n, n)),
    }
    for kind, data in masks.items():
        arrays[kind] = data
        for r, res in (("R1", 10), ("R2", 20)):
            sub = data if r == "R1" else data[::2, ::2]
            _write(root / "MASKS" / f"{MAJA_ID}_{kind}_{r}.tif", sub, epsg, ulx, uly, res)
    return root, arrays
