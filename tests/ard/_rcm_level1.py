"""A small RCM level-1 GRD product built on GDAL's fake RCM product (real layout, real XML).

GDAL's test product (``../shared/data/gdal_rcm_fake_VV_VH_GRD``) has product.xml, the VH beta
LUT, the VH noise levels and the incidence angles, but no imagery and one tie point. This
copies it and, in the copy only: shrinks the raster to ``LINES x SAMPLES``, puts a 5 x 5
tie-point grid (flat terrain near Ottawa, a mildly curved ground-range mapping) in
product.xml, writes sigma0 (negative step, as the descending real products) and gamma0
(positive step) LUTs for both polarisations, the VV beta LUT and noise as copies of the VH
ones, and uint16 DN imagery with a bright block to find after geocoding.
"""

from __future__ import annotations

import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np

LINES, SAMPLES = 48, 64
BRIGHT = (slice(20, 26), slice(30, 38))  # lines, samples of the bright block


def dn(pol: str) -> np.ndarray:
    """Deterministic DN (no RNG): a smooth ramp, a texture, the bright block, a no-data edge."""
    i, j = np.mgrid[0:LINES, 0:SAMPLES]
    base = 120 + 3 * j + 2 * i + (37 * i + 101 * j) % 53 + (0 if pol == "VV" else -60)
    out = base.astype(np.uint16)
    out[BRIGHT] = 900 if pol == "VV" else 500
    out[:, :2] = 0  # no data at the near-range edge
    return out


def lonlat(pixel: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The made-up (flat-terrain) geolocation of image coordinates (pixel centres)."""
    lon = -75.70 + 2.6e-4 * pixel + 3.0e-5 * line + 4.0e-7 * pixel**2
    lat = 45.40 - 1.8e-4 * line + 2.0e-5 * pixel
    return lon, lat


def _lut(first: int, step: int, gains: np.ndarray) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<lut xmlns="rcmGsProductSchema">\n'
        f"\t<pixelFirstLutValue>{first}</pixelFirstLutValue>\n"
        f"\t<stepSize>{step}</stepSize>\n"
        f"\t<numberOfValues>{gains.size}</numberOfValues>\n"
        "\t<offset>0</offset>\n"
        f"\t<gains>{' '.join(f'{g:.6e}' for g in gains)}</gains>\n"
        "</lut>\n"
    )


def build(fake: Path, dest: Path) -> Path:
    """Write the product folder under ``dest`` and return it."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    folder = dest / "RCM1_fake_VV_VH_GRD"
    shutil.copytree(fake, folder)
    xml_path = folder / "metadata" / "product.xml"
    xml = xml_path.read_text(encoding="utf-8")
    xml = xml.replace("<numLines>3297</numLines>", f"<numLines>{LINES}</numLines>")
    xml = xml.replace(
        "<samplesPerLine>17915</samplesPerLine>", f"<samplesPerLine>{SAMPLES}</samplesPerLine>"
    )
    points = []
    for line in np.linspace(0, LINES - 1, 5):
        for pixel in np.linspace(0, SAMPLES - 1, 5):
            lon, lat = lonlat(np.float64(pixel), np.float64(line))
            points.append(
                "<imageTiePoint><imageCoordinate>"
                f"<line>{line:.1f}</line><pixel>{pixel:.1f}</pixel></imageCoordinate>"
                f'<geodeticCoordinate><latitude units="deg">{lat:.9f}</latitude>'
                f'<longitude units="deg">{lon:.9f}</longitude>'
                '<height units="m">70.0</height></geodeticCoordinate></imageTiePoint>'
            )
    xml, n = re.subn(
        r"<geolocationGrid>.*?</geolocationGrid>",
        "<geolocationGrid>" + "".join(points) + "</geolocationGrid>",
        xml,
        flags=re.S,
    )
    assert n == 1
    xml_path.write_text(xml, encoding="utf-8")
    cal = folder / "metadata" / "calibration"
    for k, pol in enumerate(("VH", "VV")):
        # sigma0: right to left, 4 samples apart, the last gain at column 0 (GDAL's reading)
        sigma = 3.1e5 + 2.0e3 * np.arange(17) + 1.0e4 * k
        (cal / f"lutSigma_{pol}.xml").write_text(_lut(64, -4, sigma))
        gamma = 2.6e5 + 1.5e3 * np.arange(9) ** 1.5 + 1.0e4 * k
        (cal / f"lutGamma_{pol}.xml").write_text(_lut(0, 8, gamma))
    shutil.copy(cal / "lutBeta_VH.xml", cal / "lutBeta_VV.xml")
    shutil.copy(cal / "noiseLevels_VH.xml", cal / "noiseLevels_VV.xml")
    (folder / "imagery").mkdir()
    for pol in ("VH", "VV"):
        with warnings.catch_warnings():  # ground-range imagery has no geotransform, on purpose
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dst = rasterio.open(
                folder / "imagery" / f"{pol}.tif",
                "w",
                driver="GTiff",
                width=SAMPLES,
                height=LINES,
                count=1,
                dtype="uint16",
            )
        with dst:
            dst.write(dn(pol), 1)
    return folder


def zipped(folder: Path) -> Path:
    """The product folder as EODMS delivers it: one zip holding the folder."""
    out = folder.parent / f"{folder.name}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f"{folder.name}/{f.relative_to(folder).as_posix()}")
    return out
