"""Write RCM level-1 product folders from arrays (synthetic products for tests and the sample).

The folder is laid out as the CSA distributes it and :func:`mus_lab.ard.open_rcm` reads it
back: ``metadata/product.xml``, ``metadata/calibration/lut{Beta,Sigma,Gamma}_<POL>.xml``,
``noiseLevels_<POL>.xml``, ``incidenceAngles.xml`` and ``imagery/<POL>.tif`` (uint16
magnitude DN). Moved out of :mod:`mus_lab.ard` (a stage reads products, it does not make them).
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mus_lab.ard._rcm import _CAL_TYPES, _LUT_PREFIX, RcmGcp, _expand
from mus_lab.errors import MetadataError

__all__ = ["write_rcm_product"]

_NS = "rcmGsProductSchema"


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
