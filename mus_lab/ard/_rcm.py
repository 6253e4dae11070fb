"""RADARSAT Constellation Mission (RCM) products: read product.xml, LUTs, noise, imagery; write.

An RCM product is a folder::

    <product>/metadata/product.xml                          (namespace rcmGsProductSchema)
    <product>/metadata/calibration/lut{Beta,Sigma,Gamma}_<POL>.xml
    <product>/metadata/calibration/noiseLevels_<POL>.xml
    <product>/metadata/calibration/incidenceAngles.xml
    <product>/imagery/<POL>.tif                               (one GeoTIFF per polarisation)

GDAL gained an RCM driver in 3.11; the rasterio wheels bundle 3.10, so the XML is read
here and the TIFFs with rasterio.

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
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from mus_lab.ard._sar_common import apply_blockwise, floats, open_tiff_lazy, parse_xml, text
from mus_lab.errors import MetadataError, ProductFileError

__all__ = [
    "RcmGcp",
    "RcmLut",
    "RcmNoiseLevels",
    "RcmProduct",
    "calibrate_rcm",
    "open_rcm",
    "read_rcm_lut",
    "read_rcm_noise",
    "write_rcm_product",
]

RcmTarget = Literal["beta0", "sigma0", "gamma0"]
_CAL_TYPES: dict[str, str] = {"beta0": "Beta Nought", "sigma0": "Sigma Nought", "gamma0": "Gamma"}
_LUT_PREFIX: dict[str, str] = {"beta0": "lutBeta", "sigma0": "lutSigma", "gamma0": "lutGamma"}
_NS = "rcmGsProductSchema"


def _expand(first: float, step: float, values: np.ndarray, width: int) -> np.ndarray:
    """Values given at ``first + i * step`` expanded to columns ``0 .. width-1``."""
    if values.size == 0:
        raise MetadataError("A LUT with no values cannot be expanded: corrupt RCM XML.")
    if values.size > 1 and step == 0:
        raise MetadataError("A LUT with several values needs a non-zero stepSize: corrupt XML.")
    pos = first + step * np.arange(values.size, dtype=np.float64)
    order = np.argsort(pos, kind="stable")
    return np.interp(np.arange(width, dtype=np.float64), pos[order], values[order])


def _check_target(to: str) -> str:
    if to not in _CAL_TYPES:
        raise MetadataError(f"Unknown RCM calibration {to!r}: choose one of {sorted(_CAL_TYPES)}.")
    return to


@dataclass(frozen=True, eq=False)
class RcmLut:
    """One RCM calibration LUT (``lut{Beta,Sigma,Gamma}_<POL>.xml``).

    Attributes
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
    """

    pixel_first: int
    step: int
    number_of_values: int
    offset: float
    gains: np.ndarray

    def expand(self, width: int) -> np.ndarray:
        """Per-column gains for a raster ``width`` columns wide (float64)."""
        return _expand(self.pixel_first, self.step, self.gains, width)


@dataclass(frozen=True, eq=False)
class RcmNoiseLevels:
    """``noiseLevels_<POL>.xml``: reference noise levels by calibration type, in dB.

    Attributes
    ----------
    levels : dict
        ``{"beta0" | "sigma0" | "gamma0": (pixel_first, step, values_db)}``.
    """

    levels: dict[str, tuple[int, int, np.ndarray]]

    def expand_db(self, to: RcmTarget, width: int) -> np.ndarray:
        """Per-column noise level of ``to`` in dB."""
        _check_target(to)
        if to not in self.levels:
            raise MetadataError(
                f"The noise levels hold no {_CAL_TYPES[to]!r} reference level: calibrate "
                f"to one of {sorted(self.levels)} or pass remove_noise=False."
            )
        first, step, vals = self.levels[to]
        return _expand(first, step, vals, width)

    def expand(self, to: RcmTarget, width: int) -> np.ndarray:
        """Per-column noise power of ``to`` (linear)."""
        return np.power(10.0, self.expand_db(to, width) / 10.0)


@dataclass(frozen=True)
class RcmGcp:
    """A ground control point (``imageTiePoint``) of product.xml."""

    pixel: float
    line: float
    lon: float
    lat: float
    height: float


def read_rcm_lut(path: str | Path) -> RcmLut:
    """Read an RCM calibration LUT XML.

    Parameters
    ----------
    path : str or pathlib.Path
        ``metadata/calibration/lut{Beta,Sigma,Gamma}_<POL>.xml``.

    Returns
    -------
    RcmLut

    Raises
    ------
    ProductFileError
        The file is missing.
    MetadataError
        The counts disagree or an element is missing.
    """
    what = "an RCM calibration LUT"
    root = parse_xml(path, what=what)
    gains = floats(text(root, "gains", what=what))
    n = int(text(root, "numberOfValues", what=what))
    if n != gains.size:
        raise MetadataError(
            f"{path}: numberOfValues is {n} but {gains.size} gains are listed; the LUT is corrupt."
        )
    return RcmLut(
        pixel_first=int(float(text(root, "pixelFirstLutValue", what=what))),
        step=int(float(text(root, "stepSize", what=what))),
        number_of_values=n,
        offset=float(text(root, "offset", what=what, default="0")),
        gains=gains,
    )


def read_rcm_noise(path: str | Path) -> RcmNoiseLevels:
    """Read ``noiseLevels_<POL>.xml`` (the ``referenceNoiseLevel`` elements).

    Parameters
    ----------
    path : str or pathlib.Path
        The noise levels XML.

    Returns
    -------
    RcmNoiseLevels
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
            raise MetadataError(f"{path}: numberOfValues {n} but {vals.size} noise values listed.")
        levels[kind] = (
            int(float(text(ref, "pixelFirstNoiseValue", what=what))),
            int(float(text(ref, "stepSize", what=what))),
            vals,
        )
    if not levels:
        raise MetadataError(f"{path} has no referenceNoiseLevel: it is not an RCM noise file.")
    return RcmNoiseLevels(levels)


def _maybe_float(s: str | None) -> float | None:
    try:
        return float(s) if s is not None else None
    except ValueError:  # placeholders in test products
        return None


@dataclass(frozen=True)
class RcmProduct:
    """An RCM product folder as read by :func:`open_rcm`.

    Attributes
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

    @property
    def metadata_dir(self) -> Path:
        """``<folder>/metadata``."""
        return self.folder / "metadata"

    def _pol(self, polarization: str) -> str:
        pol = polarization.upper()
        if pol not in self.polarizations:
            raise MetadataError(
                f"{self.folder.name} has no {pol} band: choose one of {self.polarizations}."
            )
        return pol

    def _calib_file(self, name: str, what: str) -> Path:
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

        Raises
        ------
        ProductFileError
            The LUT file named in product.xml is not in ``metadata/calibration``.
        """
        pol = self._pol(polarization)
        _check_target(to)
        name = self.luts.get((to, pol), f"{_LUT_PREFIX[to]}_{pol}.xml")
        return read_rcm_lut(self._calib_file(name, f"The {_CAL_TYPES[to]} LUT"))

    def read_noise(self, polarization: str) -> RcmNoiseLevels:
        """The noise levels of ``polarization``."""
        pol = self._pol(polarization)
        name = self.noise_files.get(pol, f"noiseLevels_{pol}.xml")
        return read_rcm_noise(self._calib_file(name, "The noise levels file"))

    def read_incidence(self) -> np.ndarray:
        """Incidence angle per raster column (degrees, float64) from incidenceAngles.xml."""
        what = "an RCM incidence angles file"
        path = self._calib_file(self.incidence_file or "incidenceAngles.xml", "The incidence file")
        root = parse_xml(path, what=what)
        return _expand(
            int(float(text(root, "pixelFirstAnglesValue", what=what))),
            int(float(text(root, "stepSize", what=what))),
            floats(text(root, "angles", what=what)),
            self.samples,
        )

    def imagery_path(self, polarization: str) -> Path:
        """The imagery TIFF of ``polarization``; raises if missing."""
        pol = self._pol(polarization)
        rel = self.imagery.get(pol, f"../imagery/{pol}.tif")
        path = (self.metadata_dir / rel).resolve()
        if not path.is_file():
            raise ProductFileError(
                f"Imagery for {pol} ({rel} relative to metadata/) is missing from {self.folder}: "
                "copy the product's imagery/ folder next to metadata/."
            )
        return path

    def open_imagery(self, polarization: str, *, chunks: int = 2048) -> xr.DataArray:
        """Lazy DN of ``polarization`` as a ``(line, pixel)`` DataArray (native dtype)."""
        da_ = open_tiff_lazy(self.imagery_path(polarization), chunks=chunks, name=polarization)
        if da_.shape != (self.lines, self.samples):
            raise MetadataError(
                f"{self.imagery_path(polarization).name} is {da_.shape[1]} x {da_.shape[0]} but "
                f"product.xml says {self.samples} x {self.lines}: the product is inconsistent."
            )
        return da_.assign_attrs(polarization=polarization.upper())

    def calibrated(
        self,
        polarization: str,
        *,
        to: RcmTarget = "sigma0",
        remove_noise: bool = True,
        clip: float | Literal["nan"] = "nan",
        chunks: int = 2048,
    ) -> xr.DataArray:
        """Lazy calibrated backscatter (linear power, float32); see :func:`calibrate_rcm`."""
        dn = self.open_imagery(polarization, chunks=chunks)
        out = calibrate_rcm(
            dn,
            self.read_lut(polarization, to),
            self.read_noise(polarization) if remove_noise else None,
            to=to,
            clip=clip,
        )
        return out.assign_attrs(polarization=polarization.upper())  # type: ignore[no-any-return]


def open_rcm(path: str | Path) -> RcmProduct:
    """Read an RCM product's ``metadata/product.xml``.

    Parameters
    ----------
    path : str or pathlib.Path
        The product folder, its ``metadata`` folder, or ``metadata/product.xml``.

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

    Example
    -------
    >>> prod = open_rcm("/data/RCM1_..._GRD")  # doctest: +SKIP
    >>> prod.polarizations  # doctest: +SKIP
    ('VH', 'VV')
    """
    p = Path(path)
    if p.is_dir():
        p = p / "product.xml" if (p / "product.xml").is_file() else p / "metadata" / "product.xml"
    if not p.is_file():
        raise ProductFileError(
            f"No RCM product.xml at {path}: pass the product folder, its metadata/ folder or "
            "metadata/product.xml."
        )
    folder = p.parent.parent
    what = "an RCM product.xml"
    root = parse_xml(p, what=what)
    if root.tag != "product":
        raise MetadataError(f"{p} has root <{root.tag}>, not <product>: not an RCM product.xml.")

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
    )


def calibrate_rcm(
    dn: Any,
    lut: RcmLut,
    noise: RcmNoiseLevels | None = None,
    *,
    to: RcmTarget = "sigma0",
    clip: float | Literal["nan"] = "nan",
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
    """
    _check_target(to)
    if clip != "nan" and not (isinstance(clip, int | float) and clip > 0):
        raise MetadataError(f"clip={clip!r} is not understood: pass 'nan' or a positive float.")
    full = width if width is not None else column_offset + int(np.shape(dn)[-1])
    gains = lut.expand(full)
    noise_lin = noise.expand(to, full) if noise is not None else None

    def _block(block: np.ndarray, r0: int, c0: int) -> np.ndarray:
        cols = slice(column_offset + c0, column_offset + c0 + block.shape[1])
        d = block.astype(np.float64)
        out = (d * d + lut.offset) / gains[cols]
        if noise_lin is not None:
            out = out - noise_lin[cols]
        out = np.where(out > 0, out, np.nan if clip == "nan" else float(clip))
        out[~np.isfinite(d) | (d == 0)] = np.nan
        return out.astype(np.float32)

    out = apply_blockwise(
        dn,
        _block,
        dtype=np.float32,
        name=f"rcm-{to}",
        token=(gains, lut.offset, noise_lin, clip, column_offset),
    )
    if isinstance(out, xr.DataArray):
        out.name = to
        out.attrs.update(units="linear power", calibration=to, noise_removed=noise is not None)
    return out


# --- writer -----------------------------------------------------------------------------------
def _per_column(value: float | np.ndarray | Sequence[float], width: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(width, float(arr))
    if arr.shape != (width,):
        raise MetadataError(f"{what} must be a number or {width} values (one per column).")
    return arr


def _sub(parent: ET.Element, tag: str, value: object = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if value is not None:
        el.text = str(value)
    return el


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.15e}" for v in values)


def _write_xml(root: ET.Element, path: Path) -> None:
    root.set("xmlns", _NS)
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")


def write_rcm_product(
    folder: str | Path,
    arrays_by_pol: Mapping[str, np.ndarray],
    *,
    lut_gains: float | np.ndarray = 1.0e6,
    noise_db: float | np.ndarray = -25.0,
    incidence_deg: float | np.ndarray | None = None,
    values: Literal["dn", "sigma0"] = "dn",
    lut_step: int = 1,
    offset: float = 0.0,
    product_id: str = "RCM_SYNTHETIC",
    product_type: str = "GRD",
    satellite: str = "RCM-1",
    beam_mode: str = "Medium Resolution 30m",
    orbit_direction: Literal["Ascending", "Descending"] = "Descending",
    first_line_time: str = "2022-01-01T00:00:00.000000Z",
    last_line_time: str | None = None,
    pixel_spacing: float = 20.0,
    line_spacing: float = 20.0,
    polarization_data_mode: str | None = None,
    crs: Any = None,
    transform: Any = None,
    gcps: Sequence[RcmGcp] = (),
) -> Path:
    """Write a minimal RCM GRD product folder that :func:`open_rcm` reads back.

    Layout and element names follow real RCM products: ``metadata/product.xml``,
    ``metadata/calibration/lut{Beta,Sigma,Gamma}_<POL>.xml``, ``noiseLevels_<POL>.xml``,
    ``incidenceAngles.xml`` and ``imagery/<POL>.tif`` (uint16 magnitude DN).

    Parameters
    ----------
    folder : str or pathlib.Path
        Product folder to create (its parents are created; existing files are replaced).
    arrays_by_pol : mapping
        2-D arrays by polarisation (``{"VV": ..., "VH": ...}`` or compact-pol
        ``{"RH": ..., "RV": ...}``), all the same shape. DN when ``values="dn"``;
        linear sigma0 when ``values="sigma0"``, converted with
        ``DN = round(sqrt((sigma0 + noise) * gain - offset))`` so that reading back with
        noise removal gives sigma0 within quantisation (NaN -> DN 0, no data).
    lut_gains : float or numpy.ndarray, optional
        Sigma-nought gain per column (or one value). Beta and gamma gains follow from the
        incidence angle: ``gain_beta = gain_sigma * sin(inc)``, ``gain_gamma = gain_sigma *
        cos(inc)`` (so beta0 = sigma0 / sin(inc), gamma0 = sigma0 / cos(inc)).
    noise_db : float or numpy.ndarray, optional
        Sigma-nought noise level in dB per column (or one value); beta/gamma levels are
        derived the same way.
    incidence_deg : float or numpy.ndarray, optional
        Incidence angle per column; default a linear ramp 20-45 degrees (near range on the
        left for ascending, on the right for descending).
    values : {"dn", "sigma0"}, optional
        What ``arrays_by_pol`` holds.
    lut_step : int, optional
        Columns between LUT samples (>= 1). Descending products are written right-to-left
        (``pixelFirstLutValue = width - 1``, negative ``stepSize``) as in real products.
    offset : float, optional
        LUT offset.
    product_id, product_type, satellite, beam_mode, orbit_direction : str, optional
        Written to product.xml (``product_type`` e.g. ``"GRD"``, or ``"GCD"`` for a
        geocoded product whose imagery carries ``crs``/``transform``).
    first_line_time, last_line_time : str, optional
        Written to product.xml.
    pixel_spacing, line_spacing : float, optional
        Metres.
    polarization_data_mode : str, optional
        Default: "Compact" for RH/RV, "Single Co" / "Dual Co/Cross" otherwise.
    crs, transform : optional
        Georeferencing for the imagery TIFFs (rasterio CRS / Affine).
    gcps : sequence of RcmGcp, optional
        Tie points written to product.xml's geolocation grid.

    Returns
    -------
    pathlib.Path
        The product folder.

    Raises
    ------
    MetadataError
        Empty input, shapes differ, or a DN does not fit in uint16.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    if not arrays_by_pol:
        raise MetadataError("arrays_by_pol is empty: pass at least one polarisation.")
    pols = [p.upper() for p in arrays_by_pol]
    arrays = [np.asarray(a) for a in arrays_by_pol.values()]
    shape = arrays[0].shape
    if len(shape) != 2 or any(a.shape != shape for a in arrays):
        raise MetadataError(
            f"All arrays must be 2-D and share a shape; got {[a.shape for a in arrays]}."
        )
    if lut_step < 1:
        raise MetadataError(f"lut_step={lut_step}: pass a positive number of columns.")
    lines, width = shape
    folder = Path(folder)
    cal_dir = folder / "metadata" / "calibration"
    cal_dir.mkdir(parents=True, exist_ok=True)
    (folder / "imagery").mkdir(parents=True, exist_ok=True)

    if incidence_deg is None:
        ramp = np.linspace(20.0, 45.0, width)
        incidence_deg = ramp[::-1] if orbit_direction == "Descending" else ramp
    inc = np.radians(_per_column(incidence_deg, width, "incidence_deg"))
    g_sigma = _per_column(lut_gains, width, "lut_gains")
    n_sigma_db = _per_column(noise_db, width, "noise_db")
    gains = {"sigma0": g_sigma, "beta0": g_sigma * np.sin(inc), "gamma0": g_sigma * np.cos(inc)}
    noise_lin_sigma = np.power(10.0, n_sigma_db / 10.0)
    noise_dbs = {
        "sigma0": n_sigma_db,
        "beta0": 10 * np.log10(noise_lin_sigma / np.sin(inc)),
        "gamma0": 10 * np.log10(noise_lin_sigma / np.cos(inc)),
    }

    # LUT sample positions, right-to-left for descending products (as in real products);
    # the last position may lie beyond the raster (values there extend the edge slope).
    n_values = -(-(width - 1) // lut_step) + 1
    first, step = (width - 1, -lut_step) if orbit_direction == "Descending" else (0, lut_step)
    pos = first + step * np.arange(n_values, dtype=np.float64)
    columns = np.arange(width, dtype=np.float64)

    def at(v: np.ndarray) -> np.ndarray:
        out = np.interp(pos, columns, v)
        if width > 1:  # a sample beyond the last column: extend the edge slope linearly
            hi, lo = pos > width - 1, pos < 0
            out[hi] = v[-1] + (pos[hi] - (width - 1)) * (v[-1] - v[-2])
            out[lo] = v[0] + pos[lo] * (v[1] - v[0])
        return out

    for pol in pols:
        for kind, prefix in _LUT_PREFIX.items():
            root = ET.Element("lut")
            _sub(root, "pixelFirstLutValue", first)
            _sub(root, "stepSize", step)
            _sub(root, "numberOfValues", n_values)
            _sub(root, "offset", f"{offset:.15e}")
            _sub(root, "gains", _fmt(at(gains[kind])))
            _write_xml(root, cal_dir / f"{prefix}_{pol}.xml")
        root = ET.Element("noiseLevels")
        for kind, cal_type in _CAL_TYPES.items():
            ref = _sub(root, "referenceNoiseLevel")
            _sub(ref, "sarCalibrationType", cal_type)
            _sub(ref, "pixelFirstNoiseValue", first)
            _sub(ref, "stepSize", step)
            _sub(ref, "numberOfValues", n_values)
            _sub(ref, "noiseLevelValues", _fmt(at(noise_dbs[kind])), units="dB")
        _write_xml(root, cal_dir / f"noiseLevels_{pol}.xml")
    root = ET.Element("incidenceAngles")
    _sub(root, "pixelFirstAnglesValue", first)
    _sub(root, "stepSize", step)
    _sub(root, "numberOfValues", n_values)
    _sub(root, "angles", _fmt(at(np.degrees(inc))), units="deg")
    _write_xml(root, cal_dir / "incidenceAngles.xml")

    # imagery
    expanded = _expand(first, step, at(g_sigma), width)
    expanded_noise = np.power(10.0, _expand(first, step, at(n_sigma_db), width) / 10.0)
    for pol, arr in zip(pols, arrays, strict=True):
        if values == "sigma0":
            s0 = arr.astype(np.float64)
            with np.errstate(invalid="ignore"):
                power = (s0 + expanded_noise) * expanded - offset
                dn = np.where(np.isfinite(power) & (power > 0), np.sqrt(power), 0.0)
            dn = np.rint(dn)
        else:
            dn = np.where(np.isfinite(arr), arr, 0).astype(np.float64)
        if dn.min() < 0 or dn.max() > 65535:
            raise MetadataError(
                f"{pol} DN range {dn.min():.0f}..{dn.max():.0f} does not fit uint16: lower "
                "lut_gains (DN**2 ~ sigma0 * gain)."
            )
        profile: dict[str, Any] = dict(
            driver="GTiff",
            width=width,
            height=lines,
            count=1,
            dtype="uint16",
            tiled=True,
            blockxsize=256,
            blockysize=256,
            compress="deflate",
        )
        if crs is not None:
            profile["crs"] = crs
        if transform is not None:
            profile["transform"] = transform
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dst = rasterio.open(folder / "imagery" / f"{pol}.tif", "w", **profile)
        with dst:
            dst.write(dn.astype(np.uint16), 1)
            dst.update_tags(1, POLARIMETRIC_INTERP=pol)

    _write_product_xml(
        folder / "metadata" / "product.xml",
        pols=pols,
        lines=lines,
        width=width,
        inc_deg=np.degrees(inc),
        product_id=product_id,
        product_type=product_type,
        satellite=satellite,
        beam_mode=beam_mode,
        orbit_direction=orbit_direction,
        first_line_time=first_line_time,
        last_line_time=last_line_time or first_line_time,
        pixel_spacing=pixel_spacing,
        line_spacing=line_spacing,
        polarization_data_mode=polarization_data_mode,
        gcps=gcps,
    )
    return folder


def _write_product_xml(
    path: Path,
    *,
    pols: list[str],
    lines: int,
    width: int,
    inc_deg: np.ndarray,
    product_id: str,
    product_type: str,
    satellite: str,
    beam_mode: str,
    orbit_direction: str,
    first_line_time: str,
    last_line_time: str,
    pixel_spacing: float,
    line_spacing: float,
    polarization_data_mode: str | None,
    gcps: Sequence[RcmGcp],
) -> None:
    if polarization_data_mode is None:
        if set(pols) <= {"RH", "RV"}:
            polarization_data_mode = "Compact"
        elif len(pols) == 1:
            polarization_data_mode = "Single Co"
        else:
            polarization_data_mode = "Dual Co/Cross"
    root = ET.Element("product")
    _sub(root, "productId", product_id)
    sec = _sub(root, "securityAttributes")
    _sub(sec, "securityClassification", "Non classifié / Unclassified")
    sa = _sub(root, "sourceAttributes")
    _sub(sa, "satellite", satellite)
    _sub(sa, "sensor", "SAR")
    _sub(sa, "polarizationDataMode", polarization_data_mode)
    _sub(sa, "beamMode", beam_mode)
    _sub(sa, "beamModeMnemonic", "".join(w[0] for w in beam_mode.split()).upper())
    _sub(sa, "rawDataStartTime", first_line_time)
    rp = _sub(sa, "radarParameters")
    _sub(rp, "acquisitionType", beam_mode)
    _sub(rp, "polarizations", " ".join(pols))
    oi = _sub(_sub(sa, "orbitAndAttitude"), "orbitInformation")
    _sub(oi, "passDirection", orbit_direction)
    igp = _sub(root, "imageGenerationParameters")
    gpi = _sub(igp, "generalProcessingInformation")
    _sub(gpi, "productType", product_type)
    _sub(gpi, "polarizationsInProduct", " ".join(pols))
    _sub(gpi, "processingFacility", "mus_lab")
    _sub(gpi, "processingTime", first_line_time)
    spi = _sub(igp, "sarProcessingInformation")
    _sub(spi, "lutApplied", "Mixed")
    _sub(spi, "noiseSubtractionPerformed", "false")
    _sub(spi, "zeroDopplerTimeFirstLine", first_line_time)
    _sub(spi, "zeroDopplerTimeLastLine", last_line_time)
    _sub(spi, "satelliteHeight", "600000", units="m")
    ira = _sub(root, "imageReferenceAttributes")
    _sub(ira, "productFormat", "GeoTIFF")
    for pol in pols:
        for kind, prefix in _LUT_PREFIX.items():
            _sub(
                ira,
                "lookupTableFileName",
                f"{prefix}_{pol}.xml",
                sarCalibrationType=_CAL_TYPES[kind],
                pole=pol,
            )
    _sub(ira, "incidenceAngleFileName", "incidenceAngles.xml")
    for pol in pols:
        _sub(ira, "noiseLevelFileName", f"noiseLevels_{pol}.xml", pole=pol)
    ra = _sub(ira, "rasterAttributes")
    _sub(ra, "sampleType", "Magnitude Detected")
    _sub(ra, "dataType", "Integer")
    _sub(ra, "bitsPerSample", 16, dataStream="Magnitude")
    _sub(ra, "sampledPixelSpacing", pixel_spacing, units="m")
    _sub(ra, "sampledLineSpacing", line_spacing, units="m")
    _sub(ra, "lineTimeOrdering", "Increasing")
    _sub(ra, "pixelTimeOrdering", "Decreasing" if orbit_direction == "Descending" else "Increasing")
    gi = _sub(ira, "geographicInformation")
    ep = _sub(gi, "ellipsoidParameters")
    _sub(ep, "ellipsoidName", "WGS 1984")
    _sub(ep, "geodeticTerrainHeight", 0, units="m")
    grid = _sub(gi, "geolocationGrid")
    for g in gcps:
        tp = _sub(grid, "imageTiePoint")
        ic = _sub(tp, "imageCoordinate")
        _sub(ic, "line", g.line)
        _sub(ic, "pixel", g.pixel)
        gc = _sub(tp, "geodeticCoordinate")
        _sub(gc, "latitude", g.lat, units="deg")
        _sub(gc, "longitude", g.lon, units="deg")
        _sub(gc, "height", g.height, units="m")
    ia = _sub(_sub(root, "sceneAttributes"), "imageAttributes", sampleType="Magnitude Detected")
    for pol in pols:
        _sub(ia, "ipdf", f"../imagery/{pol}.tif", pole=pol)
    _sub(ia, "numLines", lines)
    _sub(ia, "samplesPerLine", width)
    near, far = (
        (inc_deg[-1], inc_deg[0]) if orbit_direction == "Descending" else (inc_deg[0], inc_deg[-1])
    )
    _sub(ia, "incAngNearRng", f"{min(near, far):.6f}", units="deg")
    _sub(ia, "incAngFarRng", f"{max(near, far):.6f}", units="deg")
    _write_xml(root, path)
