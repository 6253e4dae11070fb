"""Record GDAL's ``RCM_CALIB`` values of the test RCM product (tests/ard/_rcm_level1.py).

GDAL's RCM driver needs GDAL >= 3.11; the rasterio wheels of this environment bundle 3.10.
Any ``libgdal`` of 3.11 or later works through ctypes, e.g. the one inside a newer rasterio
wheel (``pip download rasterio --python-version 3.12 --only-binary=:all: --no-deps``, then
unzip ``rasterio.libs/libgdal-*.so*``)::

    python tools/gdal_rcm_reference.py LIBGDAL ../shared/data/gdal_rcm_fake_VV_VH_GRD \\
        tests/ard/data/gdal_rcm_calib_reference.json

It builds the test product in a temporary folder, reads ``RCM_CALIB:{SIGMA0,GAMMA,BETA0}``
for both bands and writes every fourth line and sample (from 2) to the JSON.
"""

from __future__ import annotations

import ctypes
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(libgdal: str, fake: str, out: str) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.ard import _rcm_level1 as l1

    g = ctypes.CDLL(libgdal)
    g.GDALVersionInfo.restype = ctypes.c_char_p
    version = g.GDALVersionInfo(b"RELEASE_NAME").decode()
    g.GDALAllRegister()
    g.GDALOpen.restype = ctypes.c_void_p
    g.GDALGetRasterBand.restype = ctypes.c_void_p
    g.GDALGetRasterBand.argtypes = [ctypes.c_void_p, ctypes.c_int]
    for name in ("GDALGetRasterCount", "GDALGetRasterXSize", "GDALGetRasterYSize", "GDALClose"):
        getattr(g, name).argtypes = [ctypes.c_void_p]
    g.GDALGetMetadataItem.restype = ctypes.c_char_p
    g.GDALGetMetadataItem.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    g.GDALRasterIO.argtypes = [ctypes.c_void_p, *[ctypes.c_int] * 5, ctypes.c_void_p]
    g.GDALRasterIO.argtypes += [ctypes.c_int] * 5
    values: dict[str, list[list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        product = l1.build(Path(fake), Path(tmp)) / "metadata" / "product.xml"
        for cal in ("SIGMA0", "GAMMA", "BETA0"):
            ds = g.GDALOpen(f"RCM_CALIB:{cal}:{product}".encode(), 0)
            if not ds:
                raise SystemExit(f"GDAL {version} cannot open RCM_CALIB:{cal}: is it >= 3.11?")
            w, h = g.GDALGetRasterXSize(ds), g.GDALGetRasterYSize(ds)
            for b in range(1, g.GDALGetRasterCount(ds) + 1):
                band = g.GDALGetRasterBand(ds, b)
                pol = g.GDALGetMetadataItem(band, b"POLARIMETRIC_INTERP", None).decode()
                buf = np.zeros((h, w), np.float32)
                if g.GDALRasterIO(band, 0, 0, 0, w, h, buf.ctypes.data, w, h, 6, 0, 0) != 0:
                    raise SystemExit(f"GDAL failed to read {cal} {pol}")
                values[f"{cal}:{pol}"] = np.round(buf[2::4, 2::4].astype(np.float64), 9).tolist()
            g.GDALClose(ds)
    record = {
        "gdal": f"{version} (through ctypes)",
        "subdatasets": "RCM_CALIB:{SIGMA0,GAMMA,BETA0}:<product.xml>",
        "pixels": "lines 2::4, samples 2::4 of tests/ard/_rcm_level1.py's product",
        "values": values,
    }
    Path(out).write_text(json.dumps(record))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
