"""Sentinel-2 L2A product metadata: BOA offsets, quantification value, angles.

The offset is read from ``MTD_MSIL2A.xml`` (``BOA_ADD_OFFSET`` per band, processing
baseline 04.00 and later) or from a STAC item's ``raster:bands``; it is never inferred
from the acquisition date.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from mus_lab.errors import ARDError

__all__ = ["S2L2AMetadata", "parse_l2a_metadata", "read_l2a_metadata"]

#: MTD band_id -> physical band.
_BAND_IDS = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B10",
    "B11",
    "B12",
)


@dataclass(frozen=True)
class S2L2AMetadata:
    """What ARD needs from an L2A product's metadata (:func:`read_l2a_metadata` makes it).

    ``reflectance = (DN + boa_add_offset[band]) / quantification``.

    Parameters
    ----------
    product_uri, spacecraft, start_time, processing_baseline : str
        As in ``MTD_MSIL2A.xml``.
    quantification : float
        ``BOA_QUANTIFICATION_VALUE`` (10000).
    boa_add_offset : dict
        ``BOA_ADD_OFFSET`` by physical band (``"B04"``), -1000 from baseline 04.00 on.
    nodata, saturated : int, optional
        Special DN values.
    sun_zenith, sun_azimuth : float, optional
        Mean sun angles of the tile (degrees), from ``MTD_TL.xml``.
    view_zenith : dict, optional
        Mean viewing zenith by band.

    Raises
    ------
    None
        Nothing on purpose (a plain record).

    Examples
    --------
    >>> meta = S2L2AMetadata("S2B_...", "Sentinel-2B", "2022-06-01", "04.00", 10000.0,
    ...                      {"B04": -1000.0})
    >>> meta.scale_offset("B04")
    (0.0001, -0.1)
    """

    product_uri: str
    spacecraft: str
    start_time: str
    processing_baseline: str
    quantification: float
    boa_add_offset: dict[str, float]
    nodata: int = 0
    saturated: int = 65535
    sun_zenith: float | None = None
    sun_azimuth: float | None = None
    view_zenith: dict[str, float] = field(default_factory=dict)

    def scale_offset(self, band: str) -> tuple[float, float]:
        """``(scale, offset)`` with reflectance = DN * scale + offset, for a physical band.

        Parameters
        ----------
        band : str
            Physical band (``"B04"``, ``"B8A"``; ``"B4"`` is read as ``"B04"``).

        Returns
        -------
        (float, float)
            Scale and offset.

        Raises
        ------
        KeyError
            The band has no ``BOA_ADD_OFFSET``.
        """
        key = band.upper().replace("B8A", "B8A")
        if len(key) == 2:
            key = f"B0{key[1]}"
        return 1.0 / self.quantification, self.boa_add_offset[key] / self.quantification


def _text(root: ET.Element, tag: str) -> str | None:
    el = next(root.iter(tag), None)
    return el.text.strip() if el is not None and el.text else None


def read_l2a_metadata(path: str | os.PathLike[str]) -> S2L2AMetadata:
    """Read ``MTD_MSIL2A.xml`` (a file or a ``.SAFE`` folder), and ``MTD_TL.xml`` angles if present.

    Parameters
    ----------
    path : str or os.PathLike
        The ``MTD_MSIL2A.xml`` file, or the product folder holding it.

    Returns
    -------
    S2L2AMetadata
        Quantification, offsets, special values and (from ``MTD_TL.xml``) mean angles.

    Raises
    ------
    ARDError
        The file is missing or unreadable, or a baseline >= 04.00 product lacks
        ``BOA_ADD_OFFSET`` values (the reflectance would be wrong by 0.1).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> mtd = pathlib.Path(tempfile.mkdtemp()) / "MTD_MSIL2A.xml"
    >>> _ = mtd.write_text(
    ...     "<L2A><PROCESSING_BASELINE>04.00</PROCESSING_BASELINE>"
    ...     "<BOA_QUANTIFICATION_VALUE>10000</BOA_QUANTIFICATION_VALUE>"
    ...     "<BOA_ADD_OFFSET band_id='3'>-1000</BOA_ADD_OFFSET></L2A>"
    ... )
    >>> read_l2a_metadata(mtd).scale_offset("B04")
    (0.0001, -0.1)
    """
    p = Path(path)
    mtd = p / "MTD_MSIL2A.xml" if p.is_dir() else p
    try:
        root = ET.parse(mtd).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ARDError(
            f"Cannot read Sentinel-2 L2A metadata {mtd}: {exc}. Give the MTD_MSIL2A.xml of the product."
        ) from exc
    tl = sorted(mtd.parent.glob("GRANULE/*/MTD_TL.xml"))
    return parse_l2a_metadata(root, ET.parse(tl[0]).getroot() if tl else None, where=str(mtd))


def parse_l2a_metadata(
    root: ET.Element, tile: ET.Element | None = None, *, where: str = "MTD_MSIL2A.xml"
) -> S2L2AMetadata:
    """:class:`S2L2AMetadata` from parsed ``MTD_MSIL2A.xml`` (and ``MTD_TL.xml``) trees.

    Used for products read without unpacking (a SAFE zip): :func:`read_l2a_metadata` reads files.

    Parameters
    ----------
    root : xml.etree.ElementTree.Element
        The root of ``MTD_MSIL2A.xml``.
    tile : xml.etree.ElementTree.Element, optional
        The root of the granule's ``MTD_TL.xml`` (mean angles).
    where : str, optional
        Where the metadata came from, for error messages.

    Returns
    -------
    S2L2AMetadata
        As :func:`read_l2a_metadata`.

    Raises
    ------
    ARDError
        No processing baseline or quantification value, or a baseline >= 04.00 product
        lacking ``BOA_ADD_OFFSET`` values.

    Examples
    --------
    >>> root = ET.fromstring(
    ...     "<L2A><PROCESSING_BASELINE>02.14</PROCESSING_BASELINE>"
    ...     "<BOA_QUANTIFICATION_VALUE>10000</BOA_QUANTIFICATION_VALUE></L2A>"
    ... )
    >>> parse_l2a_metadata(root).scale_offset("B04")
    (0.0001, 0.0)
    """
    mtd = where
    baseline = _text(root, "PROCESSING_BASELINE")
    quant = _text(root, "BOA_QUANTIFICATION_VALUE")
    if baseline is None or quant is None:
        raise ARDError(
            f"{mtd} has no PROCESSING_BASELINE or BOA_QUANTIFICATION_VALUE: is it an L2A MTD_MSIL2A.xml?"
        )
    offsets: dict[str, float] = {}
    for el in root.iter("BOA_ADD_OFFSET"):
        offsets[_BAND_IDS[int(el.attrib["band_id"])]] = float(el.text or 0)
    if not offsets:
        if baseline >= "04.00":
            raise ARDError(
                f"{mtd} is processing baseline {baseline} (>= 04.00) but lists no BOA_ADD_OFFSET: "
                "the metadata is incomplete; get the full product metadata rather than assume -1000."
            )
        offsets = dict.fromkeys(_BAND_IDS, 0.0)
    specials = {
        (_text(sv, "SPECIAL_VALUE_TEXT") or ""): int(_text(sv, "SPECIAL_VALUE_INDEX") or 0)
        for sv in root.iter("Special_Values")
    }
    meta = {
        "product_uri": _text(root, "PRODUCT_URI") or Path(mtd).parent.name,
        "spacecraft": _text(root, "SPACECRAFT_NAME") or "",
        "start_time": _text(root, "PRODUCT_START_TIME") or "",
        "processing_baseline": baseline,
        "quantification": float(quant),
        "boa_add_offset": offsets,
        "nodata": specials.get("NODATA", 0),
        "saturated": specials.get("SATURATED", 65535),
    }
    if tile is not None:
        troot = tile
        sun = next(troot.iter("Mean_Sun_Angle"), None)
        if sun is not None:
            meta["sun_zenith"] = float(_text(sun, "ZENITH_ANGLE") or "nan")
            meta["sun_azimuth"] = float(_text(sun, "AZIMUTH_ANGLE") or "nan")
        meta["view_zenith"] = {
            _BAND_IDS[int(v.attrib["bandId"])]: float(_text(v, "ZENITH_ANGLE") or "nan")
            for v in troot.iter("Mean_Viewing_Incidence_Angle")
        }
    return S2L2AMetadata(**meta)  # type: ignore[arg-type]
