"""Writing Cloud-Optimised GeoTIFFs in row blocks, and atomic output folders."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from numpy.typing import NDArray
from rasterio.windows import Window

from mus_lab import _io
from mus_lab.errors import SampleError

__all__ = ["CogWriter", "atomic_folder", "blocksize_for"]


def blocksize_for(width: int, height: int) -> int:
    """COG tile size: small tiles for small rasters so that overviews still exist."""
    n = max(width, height)
    return 64 if n <= 512 else 256 if n <= 4096 else 512


class CogWriter:
    """Write one single-band raster row block by row block, then convert it to a COG.

    Blocks go to an uncompressed tiled GeoTIFF beside ``path``; :meth:`close` turns it
    into a DEFLATE-compressed COG with overviews and removes the temporary file.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        dtype: str,
        crs: str,
        transform: Any,
        nodata: float | None,
        categorical: bool = False,
    ) -> None:
        self.path = path
        self.tmp = path.with_name(path.stem + ".part.tif")
        self.bs = blocksize_for(width, height)
        self.categorical = categorical
        self._ds = rasterio.open(
            self.tmp,
            "w",
            driver="GTiff",
            width=width,
            height=height,
            dtype=dtype,
            crs=crs,
            count=1,
            transform=transform,
            nodata=nodata,
            tiled=True,
            blockxsize=self.bs,
            blockysize=self.bs,
            BIGTIFF="IF_SAFER",
        )

    def write(self, row: int, data: NDArray[Any]) -> None:
        """Write ``data`` (rows x width) starting at row ``row``."""
        h, w = data.shape
        self._ds.write(data, 1, window=Window(0, row, w, h))

    def close(self) -> Path:
        """Finish the COG and return its path."""
        self._ds.close()
        rasterio.shutil.copy(
            self.tmp,
            self.path,
            driver="COG",
            COMPRESS="DEFLATE",
            PREDICTOR="YES",
            BLOCKSIZE=str(self.bs),
            BIGTIFF="IF_SAFER",
            NUM_THREADS="ALL_CPUS",
            OVERVIEW_RESAMPLING="NEAREST" if self.categorical else "AVERAGE",
        )
        self.tmp.unlink()
        return self.path


def write_array(path: Path, data: NDArray[Any], **profile: Any) -> Path:
    """Write a whole 2-D array as a COG (for small rasters)."""
    writer = CogWriter(
        path, width=data.shape[1], height=data.shape[0], dtype=str(data.dtype), **profile
    )
    writer.write(0, data)
    return writer.close()


@contextlib.contextmanager
def atomic_folder(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling of ``out``; rename it to ``out`` only if the block succeeds."""
    if out.exists() and not overwrite:
        raise SampleError(
            f"{out} already exists: pass overwrite=True to replace it, or choose another out_dir"
        )
    with _io.atomic_folder(out) as tmp:
        yield tmp


def as_uint16_dn(refl: NDArray[np.float32], offset: float) -> NDArray[np.uint16]:
    """Sentinel-2 DN from reflectance: ``round((refl - offset) * 10000)``; 0 stays no data."""
    dn = np.rint((refl - offset) * 10000.0)
    dn = np.where(refl <= 0, 0, np.clip(dn, 1, 65535))
    return dn.astype(np.uint16)
