"""A real Sentinel-1 SAFE (annotation, calibration, noise of S1B GRDH over Rome) with
realistic DN written into a copy of its measurement TIFF (the shipped one is a dummy).

The DN come from a known sigma0 scene through the product's own LUTs and noise:
``DN = sqrt(sigma0 * A_sigma**2 + noise) * sqrt(speckle)``, speckle gamma-distributed with
the GRDH number of looks (4.4), so that calibration + noise removal must give back sigma0
(on average) and bright point targets mark known image positions. The TIFF has the full
product size (16705 x 26102) but is written sparse (tiles outside ``window`` absent, read as
0 = no data), so the copy is small and fast. Used by tests/ard/test_s1_safe.py and
benchmarks/bench_s1_safe.py.
"""

from __future__ import annotations

import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np

SAFE_NAME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
LAND_DB, WATER_DB, TARGET_DB = -8.0, -22.0, 12.0
#: Bright 3 x 3 targets every TARGET_STEP lines and pixels (centres at multiples + 32).
TARGET_STEP = 128
ENL = 4.4


def sigma0_scene(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The linear sigma0 written at image ``rows x cols`` (land, a water strip, targets)."""
    r = rows[:, None].astype(np.float64)
    c = cols[None, :].astype(np.float64)
    db = LAND_DB + 1.5 * np.sin(r / 300.0) * np.cos(c / 450.0)
    water = np.abs((c - 0.35 * r) % 3000.0 - 1500.0) < 60.0
    db = np.where(water, WATER_DB, db)
    tr = np.abs((r - 32) % TARGET_STEP) <= 1
    tc = np.abs((c - 32) % TARGET_STEP) <= 1
    db = np.where(tr & tc, TARGET_DB, db)
    return np.asarray(10.0 ** (db / 10.0))


def write_safe(
    src: Path,
    dst_dir: Path,
    *,
    window: tuple[int, int, int, int] | None,
    seed: int = 0,
    speckle: bool = True,
    as_zip: bool = False,
    block: int = 512,
) -> Path:
    """Copy the SAFE at ``src`` into ``dst_dir`` with realistic DN in ``window``.

    ``window`` is ``(row0, row1, col0, col1)`` (rounded out to 512-pixel tiles), None for the
    whole image. Returns the SAFE folder, or the zip (SAFE folder inside, TIFF stored) when
    ``as_zip``.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    from mus_lab.ard import open_safe

    dst = dst_dir / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tiff"))
    dst.chmod(0o755)  # the shared data is read-only: the copy must be removable
    for f in dst.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    safe = open_safe(src)
    rng = np.random.default_rng(seed)
    for pol in safe.polarisations:
        files = safe.files[pol]
        assert files.measurement is not None
        cal = safe.read_calibration(pol)
        noise = safe.read_noise(pol)
        info = safe.read_annotation(pol)
        h, w = info.number_of_lines, info.number_of_samples
        r0, r1, c0, c1 = window if window is not None else (0, h, 0, w)
        r0, c0 = (r0 // block) * block, (c0 // block) * block
        r1, c1 = min(-(-r1 // block) * block, h), min(-(-c1 // block) * block, w)
        out = dst / files.measurement
        profile = {
            "driver": "GTiff",
            "width": w,
            "height": h,
            "count": 1,
            "dtype": "uint16",
            "tiled": True,
            "blockxsize": block,
            "blockysize": block,
            "compress": "deflate",
            "SPARSE_OK": True,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(out, "w", **profile) as ds:
                for rs in range(r0, r1, block):
                    rows = np.arange(rs, min(rs + block, r1))
                    cols = np.arange(c0, c1)
                    s0 = sigma0_scene(rows, cols)
                    a = cal.sigma0.evaluate(rows, cols)
                    power = s0 * a * a + noise.evaluate(rows, cols)
                    if speckle:
                        power *= rng.gamma(ENL, 1.0 / ENL, size=power.shape)
                    dn = np.clip(np.rint(np.sqrt(power)), 1, 65535).astype(np.uint16)
                    dn[:, cols < 60] = 0  # the swath edges hold no data (IPF >= 2.90)
                    dn[:, cols >= w - 60] = 0
                    ds.write(dn, 1, window=Window(c0, rs, c1 - c0, len(rows)))
    if not as_zip:
        return dst
    zpath = dst_dir / (src.name.replace(".SAFE", "") + ".zip")
    with zipfile.ZipFile(zpath, "w") as z:
        for f in sorted(dst.rglob("*")):
            if f.is_file():
                kind = zipfile.ZIP_STORED if f.suffix == ".tiff" else zipfile.ZIP_DEFLATED
                z.write(f, f"{src.name}/{f.relative_to(dst).as_posix()}", compress_type=kind)
    shutil.rmtree(dst)
    return zpath
