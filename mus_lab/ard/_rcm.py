"""RADARSAT Constellation Mission (RCM) products: read product.xml, LUTs, noise, imagery.

An RCM product is a folder::

    <product>/metadata/product.xml                          (namespace rcmGsProductSchema)
    <product>/metadata/calibration/lut{Beta,Sigma,Gamma}_<POL>.xml
    <product>/metadata/calibration/noiseLevels_<POL>.xml
    <product>/metadata/calibration/incidenceAngles.xml
    <product>/imagery/<POL>.tif                               (one GeoTIFF per polarisation)

The product may also be the zip EODMS delivers (``<name>.zip`` holding that folder): the XML
is then read from the archive and the TIFFs through ``/vsizip/``, nothing is unpacked.

GDAL gained an RCM driver in 3.11; the rasterio wheels bundle 3.10, so the XML is read
here and the TIFFs with rasterio.

Geolocation: level-1 GRD imagery carries no CRS; its ``imageTiePoint`` grid (pixel, line,
latitude, longitude, height) locates it. :meth:`RcmProduct.native_geobox` then returns an
odc-geo ``GCPGeoBox`` (tie points at pixel centres, ``+0.5`` as GDAL's RADARSAT-2 driver
does), and reprojection onto a GeoBox runs GDAL's GCP transformer (polynomial, as
``gdalwarp`` with GCPs) lazily per output chunk (odc-geo). Heights are not used: the result
is right over flat terrain near the tie-point heights (no DEM, no range-Doppler yet).

RADARSAT-2 level-1 products are *not* read here: their product.xml has another schema
(``rasterAttributes/numberOfLines``, ``fullResolutionImageData``), full-width LUTs beside
product.xml and the noise inside it; GDAL's ``RS2`` driver reads them.

Calibration convention (RCM Product Format Definition, section 7.5; the same as
RADARSAT-2, and what GDAL's ``rcmdataset.cpp`` applies)::

    value = (DN**2 + offset) / gain[pixel]

with ``gain`` and ``offset`` from the LUT of the wanted quantity (beta0, sigma0, gamma0).
A LUT lists ``numberOfValues`` gains at range samples ``pixelFirstLutValue + i * stepSize``
(``i`` from 0). ``stepSize`` may be negative: the list then runs right-to-left (GDAL's
comment: "range sample index = gains entry index * stepSize + pixelFirstLutValue").
The gains are expanded to one per raster column by linear interpolation between those
samples, holding the edge values beyond them. Noise levels (``noiseLevels_<POL>.xml``,
``referenceNoiseLevel`` per calibration type) are in dB with the same first/step
convention; noise removal subtracts ``10 ** (dB / 10)`` from the calibrated power.
Values ``<= 0`` after noise removal become NaN (or the ``clip`` floor); ``DN == 0`` is no
data (NaN).
"""

from __future__ import annotations

import math
import posixpath
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import xarray as xr
from odc.geo.gcp import GCPGeoBox
from odc.geo.geobox import GeoBox

from mus_lab.ard import _sar_common
from mus_lab.ard._sar_common import floats, parse_xml, text
from mus_lab.ard._sar_product import Clip, _ProductMethods
from mus_lab.errors import ARDError, MetadataError, ProductFileError

__all__ = [
    "RcmGcp",
    "RcmGeolocationError",
    "RcmLut",
    "RcmNoiseLevels",
    "RcmProduct",
    "calibrate_rcm",
    "open_rcm",
    "read_rcm_lut",
    "read_rcm_noise",
]

RcmTarget = Literal["beta0", "sigma0", "gamma0"]
_CAL_TYPES: dict[str, str] = {"beta0": "Beta Nought", "sigma0": "Sigma Nought", "gamma0": "Gamma"}
_LUT_PREFIX: dict[str, str] = {"beta0": "lutBeta", "sigma0": "lutSigma", "gamma0": "lutGamma"}


class RcmGeolocationError(ARDError, ValueError):
    """An RCM product that cannot be placed on a grid: no CRS and too few tie points."""


def _expand(first: float, step: float, values: np.ndarray, width: int) -> np.ndarray:
    """Values given at ``first + i * step`` expanded to columns ``0 .. width-1``."""
    if values.size == 0:
        raise MetadataError("A LUT with no values cannot be expanded: corrupt RCM XML.")
    if values.size > 1 and step == 0:
        raise MetadataError("A LUT with several values needs a non-zero stepSize: corrupt XML.")
    pos = first + step * np.arange(values.size, dtype=np.float64)
    order = np.argsort(pos, kind="stable")
    return np.interp(np.arange(width, dtype=np.float64), pos[order], values[order])


def _check_target(to: str) -> RcmTarget:
    if to not in _CAL_TYPES:
        raise MetadataError(f"Unknown RCM calibration {to!r}: choose one of {sorted(_CAL_TYPES)}.")
    return cast(RcmTarget, to)


@dataclass(frozen=True, eq=False)
class RcmLut:
    """One RCM calibration LUT (``lut{Beta,Sigma,Gamma}_<POL>.xml``).

    Parameters
    ----------
    pixel_first : int
        ``pixelFirstLutValue``: range sample of the first gain.
    step : int
        ``stepSize`` in samples (negative: right-to-left).
    number_of_values : int
        ``numberOfValues``.
    offset : float
        ``offset`` added to ``DN**2``.
    gains : numpy.ndarray
        ``gains``, float64.

    Raises
    ------
    None
        Nothing on purpose (a record of what the product files say).
    """

    pixel_first: int
    step: int
    number_of_values: int
    offset: float
    gains: np.ndarray

    def expand(self, width: int) -> np.ndarray:
        """Per-column gains for a raster ``width`` columns wide (float64).

        Parameters
        ----------
        width : int
            Number of range samples (columns) of the full raster.

        Returns
        -------
        numpy.ndarray
            float64, shape ``(width,)``: the gains given every ``step`` samples from
            ``pixel_first``, linearly interpolated, held constant beyond both ends.

        Raises
        ------
        MetadataError
            No gains, or several gains with a zero ``step``.

        Examples
        --------
        >>> RcmLut(pixel_first=0, step=2, number_of_values=2, offset=0.0,
        ...        gains=np.array([10.0, 20.0])).expand(4)
        array([10., 15., 20., 20.])
        """
        return _expand(self.pixel_first, self.step, self.gains, width)


@dataclass(frozen=True, eq=False)
class RcmNoiseLevels:
    """``noiseLevels_<POL>.xml``: reference noise levels by calibration type, in dB.

    Parameters
    ----------
    levels : dict
        ``{"beta0" | "sigma0" | "gamma0": (pixel_first, step, values_db)}``.

    Raises
    ------
    None
        Nothing on purpose (a record of what the product files say).
    """

    levels: dict[str, tuple[int, int, np.ndarray]]

    def expand_db(self, to: RcmTarget, width: int) -> np.ndarray:
        """Per-column noise level of ``to`` in dB.

        Parameters
        ----------
        to : {"sigma0", "beta0", "gamma0"}
            Which reference noise level (the calibration the backscatter uses).
        width : int
            Number of range samples (columns) of the full raster.

        Returns
        -------
        numpy.ndarray
            float64 dB, shape ``(width,)``, interpolated between the given samples.

        Raises
        ------
        MetadataError
            Unknown ``to``, or the file holds no level for it.

        Examples
        --------
        >>> noise = RcmNoiseLevels({"sigma0": (0, 2, np.array([-30.0, -20.0]))})
        >>> noise.expand_db("sigma0", 3)
        array([-30., -25., -20.])
        """
        _check_target(to)
        if to not in self.levels:
            raise MetadataError(
                f"The noise levels hold no {_CAL_TYPES[to]!r} reference level: calibrate "
                f"to one of {sorted(self.levels)} or pass remove_noise=False."
            )
        first, step, vals = self.levels[to]
        return _expand(first, step, vals, width)

    def expand(self, to: RcmTarget, width: int) -> np.ndarray:
        """Per-column noise power of ``to`` (linear).

        Parameters
        ----------
        to : {"sigma0", "beta0", "gamma0"}
            Which reference noise level.
        width : int
            Number of range samples (columns) of the full raster.

        Returns
        -------
        numpy.ndarray
            float64 linear power ``10 ** (dB / 10)``, shape ``(width,)``.

        Raises
        ------
        MetadataError
            As :meth:`expand_db` (unknown ``to``, or no level for it in the file).

        Examples
        --------
        >>> RcmNoiseLevels({"sigma0": (0, 1, np.array([-20.0, -10.0]))}).expand("sigma0", 2)
        array([0.01, 0.1 ])
        """
        return np.power(10.0, self.expand_db(to, width) / 10.0)


@dataclass(frozen=True)
class RcmGcp:
    """A ground control point (``imageTiePoint``) of product.xml.

    Parameters
    ----------
    pixel, line : float
        Image coordinates.
    lon, lat : float
        Degrees (WGS 84).
    height : float
        Metres above the ellipsoid.

    Raises
    ------
    None
        Nothing on purpose (a record of what the product files say).
    """

    pixel: float
    line: float
    lon: float
    lat: float
    height: float


def read_rcm_lut(path: str | Path | bytes) -> RcmLut:
    """Read an RCM calibration LUT XML.

    Parameters
    ----------
    path : str, pathlib.Path or bytes
        ``metadata/calibration/lut{Beta,Sigma,Gamma}_<POL>.xml``, or its content.

    Returns
    -------
    RcmLut
        The gains, their first column and step, and the offset.

    Raises
    ------
    ProductFileError
        The file is missing.
    MetadataError
        The counts disagree or an element is missing.

    Examples
    --------
    >>> from pathlib import Path
    >>> calibration = "rcm-grd/*/metadata/calibration"
    >>> luts = sorted(Path(tiny.catalog_path).parent.glob(f"{calibration}/lutSigma_VV.xml"))
    >>> lut = read_rcm_lut(luts[0])
    >>> abs(lut.step), lut.number_of_values == lut.gains.size
    (8, True)
    """
    what = "an RCM calibration LUT"
    root = parse_xml(path, what=what)
    gains = floats(text(root, "gains", what=what))
    n = int(text(root, "numberOfValues", what=what))
    if n != gains.size:
        raise MetadataError(
            f"{_label(path)}: numberOfValues is {n} but {gains.size} gains are listed; the LUT "
            "is corrupt: download the product again."
        )
    return RcmLut(
        pixel_first=int(float(text(root, "pixelFirstLutValue", what=what))),
        step=int(float(text(root, "stepSize", what=what))),
        number_of_values=n,
        offset=float(text(root, "offset", what=what, default="0")),
        gains=gains,
    )


def read_rcm_noise(path: str | Path | bytes) -> RcmNoiseLevels:
    """Read ``noiseLevels_<POL>.xml`` (the ``referenceNoiseLevel`` elements).

    Parameters
    ----------
    path : str, pathlib.Path or bytes
        The noise levels XML, or its content.

    Returns
    -------
    RcmNoiseLevels
        Noise levels (dB) by calibration type.

    Raises
    ------
    ProductFileError
        The file is missing.
    MetadataError
        No ``referenceNoiseLevel`` element, or counts that disagree.

    Examples
    --------
    >>> from pathlib import Path
    >>> scenario = Path(tiny.catalog_path).parent
    >>> noise = read_rcm_noise(next(scenario.glob("rcm-grd/*/*/calibration/noiseLevels_VH.xml")))
    >>> sorted(noise.levels)
    ['beta0', 'gamma0', 'sigma0']
    """
    what = "an RCM noise levels file"
    root = parse_xml(path, what=what)
    inv = {v: k for k, v in _CAL_TYPES.items()}
    levels: dict[str, tuple[int, int, np.ndarray]] = {}
    for ref in root.findall("referenceNoiseLevel"):
        kind = inv.get(text(ref, "sarCalibrationType", what=what))
        if kind is None:
            continue
        vals = floats(text(ref, "noiseLevelValues", what=what))
        n = int(text(ref, "numberOfValues", what=what, default=str(vals.size)))
        if n != vals.size:
            raise MetadataError(
                f"{_label(path)}: numberOfValues {n} but {vals.size} noise values listed: "
                "download the product again or pass remove_noise=False."
            )
        levels[kind] = (
            int(float(text(ref, "pixelFirstNoiseValue", what=what))),
            int(float(text(ref, "stepSize", what=what))),
            vals,
        )
    if not levels:
        raise MetadataError(
            f"{_label(path)} has no referenceNoiseLevel: it is not an RCM noise file; pass "
            "remove_noise=False or restore the product's noiseLevels_<POL>.xml."
        )
    return RcmNoiseLevels(levels)


def _label(path: str | Path | bytes) -> str:
    return "the XML given as bytes" if isinstance(path, bytes) else str(path)


def _maybe_float(s: str | None) -> float | None:
    try:
        return float(s) if s is not None else None
    except ValueError:  # placeholders in test products
        return None


@dataclass(frozen=True)
class RcmProduct(_ProductMethods):
    """An RCM product folder as read by :func:`open_rcm`.

    Parameters
    ----------
    folder : pathlib.Path
        The product folder (the one holding ``metadata/`` and ``imagery/``).
    product_id, product_type, satellite, sensor, beam_mode, beam_mode_mnemonic : str
        From product.xml.
    acquisition_type, polarization_data_mode, orbit_direction : str
        From product.xml (``orbit_direction`` is ``passDirection``).
    polarizations : tuple of str
        Band order, from ``radarParameters/polarizations`` (e.g. ``("VH", "VV")``,
        compact-pol ``("RH", "RV")``).
    raw_data_start_time, first_line_time, last_line_time, processing_time : str
        As written (ISO times in real products).
    lines, samples : int
        Raster size.
    pixel_spacing, line_spacing : float or None
        Metres (None when not a number).
    sample_type, data_type : str
        e.g. ``"Magnitude Detected"``, ``"Integer"``.
    bits_per_sample : int
        e.g. 16.
    security_classification, lut_applied : str
        As written.
    incidence_near, incidence_far : float or None
        Degrees.
    satellite_height, geodetic_terrain_height : float or None
        Metres.
    imagery : dict
        Imagery file (relative to ``metadata/``) by polarisation.
    luts : dict
        LUT file name by ``(target, polarisation)``, ``target`` in beta0/sigma0/gamma0.
    noise_files : dict
        Noise levels file name by polarisation.
    incidence_file : str or None
        ``incidenceAngles.xml``.
    gcps : tuple of RcmGcp
        Geolocation grid tie points.

    Raises
    ------
    None
        Nothing when made; its methods raise :class:`~mus_lab.errors.MetadataError` for an
        absent polarisation and :class:`~mus_lab.errors.ProductFileError` for a missing file.

    Examples
    --------
    >>> from mus_lab import catalog
    >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
    >>> prod = open_rcm(item.assets["product"].get_absolute_href())
    >>> prod.product_type, prod.polarizations, prod.read_lut("VV").step
    ('GCD', ('VV', 'VH'), 8)
    """

    folder: Path
    product_id: str
    product_type: str
    satellite: str
    sensor: str
    beam_mode: str
    beam_mode_mnemonic: str
    acquisition_type: str
    polarization_data_mode: str
    polarizations: tuple[str, ...]
    orbit_direction: str
    raw_data_start_time: str
    first_line_time: str
    last_line_time: str
    processing_time: str
    lines: int
    samples: int
    pixel_spacing: float | None
    line_spacing: float | None
    sample_type: str
    data_type: str
    bits_per_sample: int
    security_classification: str
    lut_applied: str
    incidence_near: float | None
    incidence_far: float | None
    satellite_height: float | None
    geodetic_terrain_height: float | None
    imagery: dict[str, str] = field(repr=False)
    luts: dict[tuple[str, str], str] = field(repr=False)
    noise_files: dict[str, str] = field(repr=False)
    incidence_file: str | None = field(repr=False)
    gcps: tuple[RcmGcp, ...] = field(repr=False)
    archive: Path | None = field(default=None, repr=False)
    root: str = field(default="", repr=False)

    @property
    def metadata_dir(self) -> Path:
        """``<folder>/metadata``."""
        return self.folder / "metadata"

    @property
    def name(self) -> str:
        """The product folder's name."""
        return self.folder.name

    @property
    def polarisations(self) -> tuple[str, ...]:
        """:attr:`polarizations` under the name :class:`~mus_lab.ard.SarProduct` uses."""
        return self.polarizations

    def _member(self, relative: str) -> str:
        """``relative`` (to the product folder) as a member name of the zip."""
        return posixpath.normpath(self.root + relative)

    def _calib_file(self, name: str, what: str) -> Path | bytes:
        if self.archive is not None:
            member = self._member(f"metadata/calibration/{name}")
            with zipfile.ZipFile(self.archive) as z:
                if member in z.namelist():
                    return z.read(member)
            raise ProductFileError(
                f"{what} {member} is missing from {self.archive}: download the whole product "
                "zip again" + (" or pass remove_noise=False." if "noise" in what else ".")
            )
        path = self.metadata_dir / "calibration" / name
        if not path.is_file():
            raise ProductFileError(
                f"{what} {path.relative_to(self.folder)} is missing from {self.folder}: copy the "
                "whole metadata/calibration folder of the product"
                + (" or pass remove_noise=False." if "noise" in what else ".")
            )
        return path

    def read_lut(self, polarization: str, to: RcmTarget = "sigma0") -> RcmLut:
        """The calibration LUT of ``to`` for ``polarization``.

        Parameters
        ----------
        polarization : str
            Whose LUT, one of :attr:`polarizations` in any case.
        to : {"sigma0", "beta0", "gamma0"}, optional
            Which LUT (default ``"sigma0"``).

        Returns
        -------
        RcmLut
            The gains of ``lut{Beta,Sigma,Gamma}_<POL>.xml``.

        Raises
        ------
        MetadataError
            Unknown polarisation or ``to``, or a malformed LUT.
        ProductFileError
            The LUT file named in product.xml is not in ``metadata/calibration``.

        Examples
        --------
        >>> from mus_lab import catalog
        >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
        >>> lut = open_rcm(item.assets["product"].get_absolute_href()).read_lut("vh", "beta0")
        >>> lut.gains.size == lut.number_of_values
        True
        """
        pol = self._check_pol(polarization)
        _check_target(to)
        name = self.luts.get((to, pol), f"{_LUT_PREFIX[to]}_{pol}.xml")
        return read_rcm_lut(self._calib_file(name, f"The {_CAL_TYPES[to]} LUT"))

    def read_noise(self, polarization: str) -> RcmNoiseLevels:
        """The noise levels of ``polarization``.

        Parameters
        ----------
        polarization : str
            Whose ``noiseLevels_<POL>.xml`` to read (any case).

        Returns
        -------
        RcmNoiseLevels
            Reference noise levels (dB) by calibration type, from ``noiseLevels_<POL>.xml``.

        Raises
        ------
        MetadataError
            Unknown polarisation, or a malformed noise file.
        ProductFileError
            The noise file is not in ``metadata/calibration``.

        Examples
        --------
        >>> from mus_lab import catalog
        >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
        >>> sorted(open_rcm(item.assets["product"].get_absolute_href()).read_noise("VV").levels)
        ['beta0', 'gamma0', 'sigma0']
        """
        pol = self._check_pol(polarization)
        name = self.noise_files.get(pol, f"noiseLevels_{pol}.xml")
        return read_rcm_noise(self._calib_file(name, "The noise levels file"))

    def read_incidence(self) -> np.ndarray:
        """Incidence angle per raster column (degrees, float64) from incidenceAngles.xml.

        Returns
        -------
        numpy.ndarray
            float64 degrees, shape ``(samples,)``, interpolated between the given angles.

        Raises
        ------
        ProductFileError
            The incidence file is not in ``metadata/calibration``.
        MetadataError
            The file is malformed.

        Examples
        --------
        >>> from mus_lab import catalog
        >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
        >>> prod = open_rcm(item.assets["product"].get_absolute_href())
        >>> angles = prod.read_incidence()
        >>> angles.shape == (prod.samples,), bool(20 < angles.mean() < 50)
        (True, True)
        """
        what = "an RCM incidence angles file"
        path = self._calib_file(self.incidence_file or "incidenceAngles.xml", "The incidence file")
        root = parse_xml(path, what=what)  # a path, or bytes from a zip
        return _expand(
            int(float(text(root, "pixelFirstAnglesValue", what=what))),
            int(float(text(root, "stepSize", what=what))),
            floats(text(root, "angles", what=what)),
            self.samples,
        )

    def imagery_href(self, polarisation: str) -> str:
        """The imagery TIFF of ``polarisation``.

        Parameters
        ----------
        polarisation : str
            Whose imagery TIFF to locate (any case).

        Returns
        -------
        str
            Absolute path of the TIFF named in product.xml (``imagery/<POL>.tif`` if unnamed).

        Raises
        ------
        MetadataError
            Unknown polarisation.
        ProductFileError
            The TIFF named in product.xml is missing.
        """
        pol = self._check_pol(polarisation)
        rel = self.imagery.get(pol, f"../imagery/{pol}.tif")
        if self.archive is not None:
            member = self._member(f"metadata/{rel}")
            with zipfile.ZipFile(self.archive) as z:
                if member not in z.namelist():
                    raise ProductFileError(
                        f"Imagery for {pol} ({member}) is missing from {self.archive}: the zip is "
                        "incomplete (a metadata-only download?); download the full product."
                    )
            return f"/vsizip/{self.archive.resolve()}/{member}"
        path = (self.metadata_dir / rel).resolve()
        if not path.is_file():
            raise ProductFileError(
                f"Imagery for {pol} ({rel} relative to metadata/) is missing from {self.folder}: "
                "copy the product's imagery/ folder next to metadata/."
            )
        return str(path)

    def open_dn(self, polarisation: str, *, chunks: int | None = None) -> xr.DataArray:
        """Lazy DN of ``polarisation`` as a ``(line, pixel)`` DataArray (native dtype).

        Parameters
        ----------
        polarisation : str
            Any case: the band of the TIFF to read.
        chunks : int, optional
            Block size in pixels of the lazy read (default: the ``chunk_size`` setting).

        Returns
        -------
        xarray.DataArray
            Dask-backed magnitude DN, shape ``(lines, samples)``, ``polarisation`` in its
            attributes.

        Raises
        ------
        ProductFileError
            The imagery TIFF is missing.
        MetadataError
            Unknown polarisation, or the TIFF's size disagrees with product.xml.

        Examples
        --------
        >>> from mus_lab import catalog
        >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
        >>> prod = open_rcm(item.assets["product"].get_absolute_href())
        >>> dn = prod.open_dn("VH")
        >>> dn.shape == (prod.lines, prod.samples), dn.attrs["polarisation"]
        (True, 'VH')
        """
        href = self.imagery_href(polarisation)
        da_ = _sar_common.open_tiff_lazy(href, chunks=chunks, name=polarisation.upper())
        if da_.shape != (self.lines, self.samples):
            raise MetadataError(
                f"{Path(href).name} is {da_.shape[1]} x {da_.shape[0]} but product.xml says "
                f"{self.samples} x {self.lines}: the product is inconsistent."
            )
        return da_.assign_attrs(polarisation=polarisation.upper())

    def gcp_geobox(self) -> GCPGeoBox:
        """The imagery's grid located by the tie points (EPSG:4326), for reprojection.

        Returns
        -------
        odc.geo.gcp.GCPGeoBox
            Shape ``(lines, samples)``; tie points at pixel centres (``pixel + 0.5``,
            ``line + 0.5`` in GDAL's corner-based image coordinates).

        Raises
        ------
        RcmGeolocationError
            Fewer than 3 tie points (a polynomial needs 3 at least).

        Examples
        --------
        >>> from dataclasses import replace
        >>> from mus_lab import catalog
        >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
        >>> prod = open_rcm(item.assets["product"].get_absolute_href())  # geocoded: no tie point
        >>> corners = [(0, 0, -75.7, 45.4), (prod.samples, 0, -75.6, 45.41),
        ...            (0, prod.lines, -75.71, 45.3), (prod.samples, prod.lines, -75.61, 45.31)]
        >>> gcps = tuple(RcmGcp(p, li, lon, lat, 0.0) for p, li, lon, lat in corners)
        >>> gbox = replace(prod, gcps=gcps).gcp_geobox()
        >>> gbox.crs.epsg, gbox.shape == (prod.lines, prod.samples)
        (4326, True)
        >>> prod.gcp_geobox()
        Traceback (most recent call last):
        ...
        mus_lab.ard._rcm.RcmGeolocationError: RCM1_16M_GRD_20211206T225040 has 0 tie point(s) in product.xml (imageReferenceAttributes/geographicInformation/geolocationGrid): at least 3 are needed to geocode it; use the complete product.xml, or order a geocoded (GCC/GCD) product.
        """
        from odc.geo.gcp import GCPGeoBox, GCPMapping

        if len(self.gcps) < 3:
            raise RcmGeolocationError(
                f"{self.name} has {len(self.gcps)} tie point(s) in product.xml "
                "(imageReferenceAttributes/geographicInformation/geolocationGrid): at least 3 "
                "are needed to geocode it; use the complete product.xml, or order a geocoded "
                "(GCC/GCD) product."
            )
        pix = np.array([[g.pixel + 0.5, g.line + 0.5] for g in self.gcps])
        wld = np.array([[g.lon, g.lat] for g in self.gcps])
        # odc-geo (0.5) normalises points by their mean distance to the centroid, point by
        # point: a tie point exactly at the centroid (the middle of an odd regular grid)
        # divides by zero. Dropping it leaves the centroid and the polynomial fit unchanged.
        at_centre = np.all(np.isclose(pix, pix.mean(axis=0), rtol=0, atol=1e-9), axis=1)
        at_centre |= np.all(np.isclose(wld, wld.mean(axis=0), rtol=0, atol=1e-12), axis=1)
        pix, wld = pix[~at_centre], wld[~at_centre]
        return GCPGeoBox((self.lines, self.samples), GCPMapping(pix, wld, "EPSG:4326"))

    def native_geobox(self, polarisation: str) -> GeoBox | GCPGeoBox:  # type: ignore[override]
        """The imagery's grid: its CRS and transform, else the tie points (:meth:`gcp_geobox`).

        Parameters
        ----------
        polarisation : str
            The band whose imagery to look at (any case).

        Returns
        -------
        odc.geo.geobox.GeoBox or odc.geo.gcp.GCPGeoBox
            A GeoBox for geocoded (GCC/GCD) imagery, a GCPGeoBox for ground-range imagery.

        Raises
        ------
        MetadataError
            No band ``polarisation``.
        ProductFileError
            Its imagery is missing.
        RcmGeolocationError
            No CRS and fewer than 3 tie points.
        """
        import warnings

        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        href = self.imagery_href(self._check_pol(polarisation))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(href)
        with src:
            if src.crs is not None:
                return GeoBox(src.shape, src.transform, src.crs)
        return self.gcp_geobox()

    def calibrate_dn(
        self, dn: Any, polarisation: str, *, to: str, remove_noise: bool, clip: Clip
    ) -> Any:
        """``dn`` of ``polarisation`` calibrated with this product's LUT (:func:`calibrate_rcm`).

        Parameters
        ----------
        dn : array-like
            numpy, dask or xarray magnitude DN on the full ``(line, pixel)`` raster (as
            :meth:`open_dn` gives it).
        polarisation : str
            One of :attr:`polarisations`: selects the LUT and noise file.
        to : {"sigma0", "beta0", "gamma0"}
            The backscatter convention (RCM has no ``"dn"`` LUT).
        remove_noise : bool
            Subtract the product's reference noise level of ``to``.
        clip : float or "nan"
            What values ``<= 0`` after noise removal become: NaN or this linear floor.

        Returns
        -------
        same type as ``dn``
            float32 linear ``to`` (NaN where the DN is 0), lazy when ``dn`` is.

        Raises
        ------
        MetadataError
            Unknown polarisation or ``to``, a bad ``clip``, or no noise level for ``to``.
        ProductFileError
            The LUT or noise file is missing.
        """
        target: RcmTarget = _check_target(to)
        return calibrate_rcm(
            dn,
            self.read_lut(polarisation, target),
            to=target,
            clip=clip,
            noise=self.read_noise(polarisation) if remove_noise else None,
        )


def open_rcm(path: str | Path) -> RcmProduct:
    """Read an RCM product's ``metadata/product.xml``.

    Parameters
    ----------
    path : str or pathlib.Path
        The product folder, its ``metadata`` folder, ``metadata/product.xml``, or the
        product's zip (read in place).

    Returns
    -------
    RcmProduct
        Metadata; LUTs, noise and imagery are read on demand.

    Raises
    ------
    ProductFileError
        No product.xml at the path.
    MetadataError
        product.xml lacks required elements.

    Examples
    --------
    >>> from pathlib import Path
    >>> from mus_lab import catalog
    >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
    >>> folder = Path(item.assets["product"].get_absolute_href()).parents[1]
    >>> prod = open_rcm(folder)
    >>> prod.polarizations, prod.orbit_direction in ("Ascending", "Descending")
    (('VV', 'VH'), True)
    """
    p = Path(path)
    archive: Path | None = None
    prefix = ""
    source: Path | bytes
    if p.is_file() and zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            found = sorted((n for n in z.namelist() if n.endswith("metadata/product.xml")), key=len)
            if not found:
                raise ProductFileError(
                    f"{p} holds no metadata/product.xml: it is not an RCM product zip (a "
                    "Sentinel-1 SAFE? use open_safe)."
                )
            source = z.read(found[0])
        archive, prefix = p, found[0][: -len("metadata/product.xml")]
        folder = p
    else:
        if p.is_dir():
            p = p / "product.xml" if (p / "product.xml").is_file() else p / "metadata/product.xml"
        if not p.is_file():
            raise ProductFileError(
                f"No RCM product.xml at {path}: pass the product folder, its metadata/ folder, "
                "metadata/product.xml or the product's zip."
            )
        folder, source = p.parent.parent, p
    what = "an RCM product.xml"
    root = parse_xml(source, what=what)
    if root.tag != "product":
        raise MetadataError(f"{p} has root <{root.tag}>, not <product>: not an RCM product.xml.")
    if root.find("sceneAttributes") is None and root.find("imageAttributes") is not None:
        raise MetadataError(
            f"{p} is a RADARSAT-2 product.xml (imageAttributes, no sceneAttributes): open_rcm "
            "reads RCM products only; open RADARSAT-2 with GDAL's RS2 driver "
            "(rasterio.open('RADARSAT_2_CALIB:SIGMA0:<product.xml>'))."
        )

    def t(path_: str, default: str | None = "") -> str:
        return text(root, path_, what=what, default=default)

    sa, igp = "sourceAttributes/", "imageGenerationParameters/"
    ira, scene = "imageReferenceAttributes/", "sceneAttributes/imageAttributes/"
    pols = tuple(t(sa + "radarParameters/polarizations", None).split())
    imagery = {
        el.get("pole", "").upper(): (el.text or "").strip()
        for el in root.findall(scene + "ipdf")
        if el.get("pole")
    }
    luts: dict[tuple[str, str], str] = {}
    inv = {v: k for k, v in _CAL_TYPES.items()}
    for el in root.findall(ira + "lookupTableFileName"):
        kind = inv.get(el.get("sarCalibrationType", ""))
        if kind and el.get("pole"):
            luts[(kind, el.get("pole", "").upper())] = (el.text or "").strip()
    noise_files = {
        el.get("pole", "").upper(): (el.text or "").strip()
        for el in root.findall(ira + "noiseLevelFileName")
        if el.get("pole")
    }
    gcps = []
    for tp in root.findall(ira + "geographicInformation/geolocationGrid/imageTiePoint"):
        gcps.append(
            RcmGcp(
                pixel=float(text(tp, "imageCoordinate/pixel", what=what)),
                line=float(text(tp, "imageCoordinate/line", what=what)),
                lon=float(text(tp, "geodeticCoordinate/longitude", what=what)),
                lat=float(text(tp, "geodeticCoordinate/latitude", what=what)),
                height=float(text(tp, "geodeticCoordinate/height", what=what, default="0")),
            )
        )
    bits = _maybe_float(t(ira + "rasterAttributes/bitsPerSample", "nan"))
    return RcmProduct(
        folder=folder,
        product_id=t("productId"),
        product_type=t(igp + "generalProcessingInformation/productType"),
        satellite=t(sa + "satellite"),
        sensor=t(sa + "sensor"),
        beam_mode=t(sa + "beamMode"),
        beam_mode_mnemonic=t(sa + "beamModeMnemonic"),
        acquisition_type=t(sa + "radarParameters/acquisitionType"),
        polarization_data_mode=t(sa + "polarizationDataMode"),
        polarizations=pols,
        orbit_direction=t(sa + "orbitAndAttitude/orbitInformation/passDirection"),
        raw_data_start_time=t(sa + "rawDataStartTime"),
        first_line_time=t(igp + "sarProcessingInformation/zeroDopplerTimeFirstLine"),
        last_line_time=t(igp + "sarProcessingInformation/zeroDopplerTimeLastLine"),
        processing_time=t(igp + "generalProcessingInformation/processingTime"),
        lines=int(t(scene + "numLines", None)),
        samples=int(t(scene + "samplesPerLine", None)),
        pixel_spacing=_maybe_float(t(ira + "rasterAttributes/sampledPixelSpacing")),
        line_spacing=_maybe_float(t(ira + "rasterAttributes/sampledLineSpacing")),
        sample_type=t(ira + "rasterAttributes/sampleType"),
        data_type=t(ira + "rasterAttributes/dataType"),
        bits_per_sample=int(bits) if bits is not None and math.isfinite(bits) else 0,
        security_classification=t("securityAttributes/securityClassification"),
        lut_applied=t(igp + "sarProcessingInformation/lutApplied"),
        incidence_near=_maybe_float(t(scene + "incAngNearRng")),
        incidence_far=_maybe_float(t(scene + "incAngFarRng")),
        satellite_height=_maybe_float(t(igp + "sarProcessingInformation/satelliteHeight")),
        geodetic_terrain_height=_maybe_float(
            t(ira + "geographicInformation/ellipsoidParameters/geodeticTerrainHeight")
        ),
        imagery=imagery,
        luts=luts,
        noise_files=noise_files,
        incidence_file=t(ira + "incidenceAngleFileName") or None,
        gcps=tuple(gcps),
        archive=archive,
        root=prefix,
    )


def calibrate_rcm(
    dn: Any,
    lut: RcmLut,
    noise: RcmNoiseLevels | None = None,
    *,
    to: RcmTarget = "sigma0",
    clip: Clip = "nan",
    width: int | None = None,
    column_offset: int = 0,
) -> Any:
    """Calibrate RCM magnitude DN: ``(DN**2 + offset) / gain - noise``, linear power.

    Parameters
    ----------
    dn : numpy.ndarray, dask.array.Array or xarray.DataArray
        2-D magnitude DN ``(line, pixel)``; ``0`` and NaN are no data.
    lut : RcmLut
        The LUT of ``to`` (from :meth:`RcmProduct.read_lut`).
    noise : RcmNoiseLevels, optional
        Noise levels; their ``to`` level (dB -> linear) is subtracted when given.
    to : {"sigma0", "beta0", "gamma0"}, optional
        Which quantity ``lut`` gives (selects the noise level).
    clip : float or "nan", optional
        Values ``<= 0`` after noise removal become NaN (default) or this linear floor.
    width : int, optional
        Full raster width for the LUT expansion (default: ``dn``'s width plus offset).
    column_offset : int, optional
        Column of ``dn[:, 0]`` in the full raster, for crops.

    Returns
    -------
    Same type as ``dn``
        float32, lazy when ``dn`` is.

    Raises
    ------
    MetadataError
        Unknown ``to``, a bad ``clip``, or noise levels without ``to``.

    Examples
    --------
    >>> lut = RcmLut(pixel_first=0, step=1, number_of_values=2, offset=0.0,
    ...              gains=np.array([1e4, 2e4]))
    >>> calibrate_rcm(np.array([[100, 100], [0, 200]], np.uint16), lut)
    array([[1. , 0.5],
           [nan, 2. ]], dtype=float32)
    """
    _check_target(to)
    floor = _sar_common.clip_floor(clip)
    full = width if width is not None else column_offset + int(np.shape(dn)[-1])
    gains = lut.expand(full)
    noise_lin = noise.expand(to, full) if noise is not None else None

    def _block(block: np.ndarray, r0: int, c0: int) -> np.ndarray:
        cols = slice(column_offset + c0, column_offset + c0 + block.shape[1])
        d = block.astype(np.float64)
        out = (d * d + lut.offset) / gains[cols]
        if noise_lin is not None:
            out = out - noise_lin[cols]
        out = np.where(out > 0, out, np.nan if floor is None else floor)
        out[~np.isfinite(d) | (d == 0)] = np.nan
        return out.astype(np.float32)

    return _sar_common.calibrated_blockwise(
        dn,
        _block,
        to=to,
        noise_removed=noise is not None,
        name=f"rcm-{to}",
        token=(gains, lut.offset, noise_lin, clip, column_offset),
    )
