"""The product contract: what every stage writes and reads, defined once.

Collection ids, variables (name, dtype, nodata, meaning), the one validity convention of
analysis-ready data, legends, the columns of the flood-risk zone table and the STAC extension
schema URLs (one version each). Stages, :mod:`mus_lab.publish`, the dashboards and the tests
import these names; nobody keeps a copy. The module imports nothing but the standard library,
so a dashboard kernel reads it in microseconds.

The validity convention
-----------------------
Every analysis-ready cube (optical or SAR) carries two variables besides its measurements:

``valid``
    bool (uint8 0/1 on disk): the measurement may be used at this pixel and date.
``quality``
    uint8 bit flags saying *why* a pixel is not valid, or what else it is. Bit 0 is always
    ``nodata``; the other bits are those of the sensor family (:data:`OPTICAL_QUALITY_BITS`,
    :data:`SAR_QUALITY_BITS`). ``valid`` is false exactly where a bit of the family's
    ``invalid`` set is raised (:func:`invalid_bits`).

Examples
--------
>>> LANDCOVER.variable("classification").nodata
0
>>> FLOOD_EXTENT.collection, FLOOD_EXTENT.per_date
('flood-extent', True)
>>> sorted(OPTICAL_QUALITY_BITS)[:3]
['cirrus', 'cloud', 'dark']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "AGREEMENT_CODES",
    "ARD_CONTRACTS",
    "COLLECTIONS",
    "CONTRACTS",
    "EXCLUSION_FLAGS",
    "EXTENSIONS",
    "FLOOD_EXTENT",
    "FLOOD_RISK",
    "FUSED",
    "FUSED_CONFIDENCE_DEFINITION",
    "LANDCOVER",
    "LANDCOVER_COLLECTIONS",
    "NODATA_CLASS",
    "NODATA_SCORE",
    "OPTICAL_QUALITY_BITS",
    "PRODUCT_COLLECTIONS",
    "RCM_ARD",
    "RECIPE_ATTR",
    "RISK_CLASS_NAMES",
    "RISK_COLOURS",
    "S1_ARD",
    "S2_ARD",
    "S2_REFLECTANCE_BANDS",
    "S2_SERIES",
    "SAMPLE_LEGEND",
    "SAMPLE_LEGEND_COLOURS",
    "SAR_POLARISATIONS",
    "SAR_QUALITY_BITS",
    "UNDECIDED",
    "ZONE_COLUMNS",
    "ProductContract",
    "Variable",
    "contract_for",
    "invalid_bits",
]

# --- STAC extensions (one version each) ----------------------------------------------------------
_EXT = "https://stac-extensions.github.io"
#: Schema URL of every STAC extension mus_lab writes, by short name.
EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        "classification": f"{_EXT}/classification/v2.0.0/schema.json",
        "eo": f"{_EXT}/eo/v1.1.0/schema.json",
        "file": f"{_EXT}/file/v2.1.0/schema.json",
        "mgrs": f"{_EXT}/mgrs/v1.0.0/schema.json",
        "processing": f"{_EXT}/processing/v1.2.0/schema.json",
        "proj": f"{_EXT}/projection/v1.1.0/schema.json",
        "raster": f"{_EXT}/raster/v1.1.0/schema.json",
        "sar": f"{_EXT}/sar/v1.0.0/schema.json",
        "sat": f"{_EXT}/sat/v1.0.0/schema.json",
        "view": f"{_EXT}/view/v1.0.0/schema.json",
    }
)

# --- source collections (the sample scenario and the providers' names) ----------------------------
#: Collection ids of the inputs, by role.
COLLECTIONS: Mapping[str, str] = MappingProxyType(
    {
        "s2": "sentinel-2-l2a",
        "s1": "sentinel-1-grd",
        "rcm": "rcm-grd",
        "dem": "dem",
        "landcover_truth": "landcover-truth",
        "flood_truth": "flood-truth",
    }
)

#: Attribute of a cube where each stage records how it was made (search, grid, options), so
#: that a model trained on it records a recipe ``mus-lab landcover predict`` can replay.
RECIPE_ATTR = "mus_lab:recipe"

# --- codes ---------------------------------------------------------------------------------------
#: Class code of "no data" in every class map (land cover, fused, truth).
NODATA_CLASS = 0
#: Code of "no data" in the 0-100 uint8 score layers (confidence, margin, entropy, likelihood).
NODATA_SCORE = 255
#: Fused class code where the sources tie.
UNDECIDED = 255
#: Land-cover legend of the generated sample scenario (code -> name).
SAMPLE_LEGEND: Mapping[int, str] = MappingProxyType(
    {1: "crops", 2: "grassland", 3: "forest", 4: "water", 5: "wetland", 6: "urban", 7: "bare"}
)
#: Colours of the sample legend (dashboards' fallback when a product carries no legend).
SAMPLE_LEGEND_COLOURS: Mapping[int, str] = MappingProxyType(
    {
        1: "#e6c94c",
        2: "#9bd36b",
        3: "#1f7a36",
        4: "#2b6cc4",
        5: "#6fc7c0",
        6: "#c44e4e",
        7: "#b9a38a",
    }
)
#: Meaning of the fused product's ``agreement`` codes.
AGREEMENT_CODES: Mapping[int, str] = MappingProxyType(
    {
        0: "no source gave the fused class (or undecided / no data)",
        1: "every source gave the fused class",
        2: "the second source's class was kept",
        3: "the first source's class was kept",
    }
)
#: What the fused ``confidence`` layer means (written into the product).
FUSED_CONFIDENCE_DEFINITION = (
    "Confidence (0 to 1) is the share of all the sources' combined evidence that points to "
    "the mapped class and to nothing else: it is high only where the sources, weighted by "
    "their validated accuracy, agree on this class, and it drops where they contradict each "
    "other or hesitate."
)
#: Bits of the flood products' ``exclusion`` layer.
EXCLUSION_FLAGS: Mapping[str, int] = MappingProxyType(
    {"hand": 1, "slope": 2, "shadow_layover": 4, "lookalike": 8}
)
#: Names of the flood-risk classes 1 (very low) ... 5 (very high) and their colours.
RISK_CLASS_NAMES = ("very low", "low", "medium", "high", "very high")
RISK_COLOURS = ("#1a9641", "#a6d96a", "#ffffbf", "#fdae61", "#d7191c")
#: Columns of the flood-risk product's ``zones`` table (CSV asset).
ZONE_COLUMNS = (
    "zone",
    "class_code",
    "class_name",
    "flooded_ha",
    "flooded_ha_low",
    "flooded_ha_high",
    "at_risk_ha",
)

# --- the validity convention of analysis-ready data -------------------------------------------------
#: Quality bits of optical ARD (bit number by name); bit 0 is ``nodata`` in every family.
OPTICAL_QUALITY_BITS: Mapping[str, int] = MappingProxyType(
    {
        "nodata": 0,
        "saturated": 1,
        "cloud": 2,
        "shadow": 3,
        "snow": 4,
        "cirrus": 5,
        "dark": 6,
        "water": 7,
    }
)
#: Quality bits of SAR ARD: ``unusable`` is a measured pixel whose calibrated value is not
#: finite and positive (e.g. after thermal-noise removal); layover and shadow come from the
#: local incidence angle where the geocoding computes it.
SAR_QUALITY_BITS: Mapping[str, int] = MappingProxyType(
    {"nodata": 0, "unusable": 1, "layover": 2, "shadow": 3}
)
_INVALID = {
    "optical": ("nodata", "saturated", "cloud", "shadow", "cirrus"),
    "sar": ("nodata", "unusable", "layover", "shadow"),
}
#: Canonical reflectance band names of Sentinel-2 ARD (docs/design/0001).
S2_REFLECTANCE_BANDS = (
    "coastal",
    "blue",
    "green",
    "red",
    "rededge1",
    "rededge2",
    "rededge3",
    "nir",
    "nir08",
    "nir09",
    "swir16",
    "swir22",
)
#: Polarisation variable names of SAR ARD (linear power or dB, float32, NaN = no data).
SAR_POLARISATIONS = ("vv", "vh", "hh", "hv", "rh", "rv")


def invalid_bits(family: Literal["optical", "sar"]) -> int:
    """The ``quality`` bit mask whose raised bits make a pixel not ``valid``.

    Parameters
    ----------
    family
        ``"optical"`` or ``"sar"``.

    Returns
    -------
    int
        The OR of the family's invalidating bits.

    Raises
    ------
    KeyError
        ``family`` is neither.

    Examples
    --------
    >>> invalid_bits("sar")
    15
    >>> bin(invalid_bits("optical"))
    '0b101111'
    """
    table = OPTICAL_QUALITY_BITS if family == "optical" else SAR_QUALITY_BITS
    if family not in _INVALID:
        raise KeyError(f"family {family!r}: choose 'optical' or 'sar'")
    out = 0
    for name in _INVALID[family]:
        out |= 1 << table[name]
    return out


# --- product contracts ------------------------------------------------------------------------------
Legend = Literal["classes", "fused", "agreement", "binary", "extent", "risk", "reference"]


@dataclass(frozen=True)
class Variable:
    """One variable of a product: its raster asset's name, type, no-data value and meaning.

    Attributes
    ----------
    name
        Variable name in the cube and asset key in the STAC item.
    dtype
        numpy dtype name on disk (``"uint8"``, ``"float32"``...).
    nodata
        No-data value on disk (``math.nan`` for floats, ``None`` for a 0/1 mask).
    title
        What the values mean (written as the asset's title).
    unit
        Unit of the values (``"1"`` for ratios), or ``None``.
    legend
        Which legend the values follow (class maps), or ``None``.
    bands
        ``"class"`` when the asset has one band per class code (probabilities), else ``None``.
    required
        Whether every product of the contract must have it.
    """

    name: str
    dtype: str
    nodata: float | int | None
    title: str
    unit: str | None = None
    legend: Legend | None = None
    bands: Literal["class"] | None = None
    required: bool = True

    def nodata_matches(self, value: object) -> bool:
        """Whether a no-data value read from a file or item is this variable's.

        Parameters
        ----------
        value
            The value found (``"nan"`` and NaN both match a NaN no-data).

        Returns
        -------
        bool

        Examples
        --------
        >>> Variable("x", "float32", math.nan, "x").nodata_matches("nan")
        True
        """
        if self.nodata is None:
            return value is None
        if isinstance(self.nodata, float) and math.isnan(self.nodata):
            return value == "nan" or (isinstance(value, float) and math.isnan(value))
        return value == self.nodata


@dataclass(frozen=True)
class ProductContract:
    """What one kind of product holds, as written by :mod:`mus_lab.publish`.

    Attributes
    ----------
    kind
        Short name of the product kind (``"landcover"``, ``"flood-risk"``...).
    collection
        Default collection id.
    level
        ``processing:level`` of its items.
    variables
        Its raster variables (one COG asset each; per-date items for ``per_date`` products).
    metadata_assets
        Non-raster assets each item must carry (``{key: media type}``).
    per_date
        One item per date (``True``) or one ``summary`` item (``False``).
    extensions
        Short names of the STAC extensions its items declare (see :data:`EXTENSIONS`).
    open_variables
        Whether variables outside ``variables`` are allowed (e.g. reflectance bands of ARD).
    """

    kind: str
    collection: str
    level: str
    variables: tuple[Variable, ...]
    metadata_assets: Mapping[str, str] = field(default_factory=dict)
    per_date: bool = False
    extensions: tuple[str, ...] = ("proj", "raster", "processing", "file")
    open_variables: bool = False

    def variable(self, name: str) -> Variable:
        """The contract of one variable.

        Parameters
        ----------
        name
            Variable (asset) name.

        Returns
        -------
        Variable

        Raises
        ------
        KeyError
            The product has no such variable.

        Examples
        --------
        >>> FUSED.variable("fused_class").dtype
        'uint8'
        """
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"{self.kind} products have no variable {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the variables, in order."""
        return tuple(v.name for v in self.variables)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the variables every product must have."""
        return tuple(v.name for v in self.variables if v.required)

    def extension_urls(self) -> list[str]:
        """Schema URLs of the extensions its items declare.

        Returns
        -------
        list of str
        """
        return [EXTENSIONS[e] for e in self.extensions]


_NAN = math.nan
#: Extensions of the products whose class maps carry a legend.
_CLASSIFIED = ("proj", "raster", "processing", "file", "classification")
_VALID = Variable("valid", "uint8", None, "1 = the measurement may be used, 0 = not")
_OPTICAL_QUALITY = Variable(
    "quality", "uint8", None, "quality bit flags (mus_lab.contracts.OPTICAL_QUALITY_BITS)"
)
_SAR_QUALITY = Variable(
    "quality", "uint8", None, "quality bit flags (mus_lab.contracts.SAR_QUALITY_BITS)"
)

#: Sentinel-2 L2A analysis-ready reflectance, one item per date.
S2_ARD = ProductContract(
    "s2-ard",
    "s2-l2a-ard",
    "L2A-ARD",
    (
        *(
            Variable(b, "float32", _NAN, f"surface reflectance, {b}", unit="1", required=False)
            for b in S2_REFLECTANCE_BANDS
        ),
        _VALID,
        _OPTICAL_QUALITY,
    ),
    per_date=True,
    open_variables=True,
)
_SAR_VARS = (
    *(
        Variable(p, "float32", _NAN, f"backscatter, {p.upper()}", required=False)
        for p in SAR_POLARISATIONS
    ),
    _VALID,
    _SAR_QUALITY,
)
#: Sentinel-2 ARD gap-filled onto a regular date grid (``ard.s2_time_series``), one item per
#: date, and ``n_valid`` (valid observations per pixel) in a summary item. Every pixel is
#: filled, so there is no ``valid``/``quality`` here: ``n_valid`` says how much was observed.
S2_SERIES = ProductContract(
    "s2-series",
    "s2-l2a-series",
    "L2A-ARD-gapfilled",
    (
        *(v for v in S2_ARD.variables if v.name in S2_REFLECTANCE_BANDS),
        Variable("n_valid", "uint16", None, "valid observations per pixel", required=False),
    ),
    per_date=True,
    open_variables=True,
)
#: Sentinel-1 GRD analysis-ready backscatter, one item per date.
S1_ARD = ProductContract(
    "s1-ard", "s1-grd-ard", "L2-ARD", _SAR_VARS, per_date=True, open_variables=True
)
#: RCM analysis-ready backscatter, one item per date (not EODMS's own ``rcm-ard``).
RCM_ARD = ProductContract(
    "rcm-ard", "rcm-grd-ard", "L2-ARD", _SAR_VARS, per_date=True, open_variables=True
)

#: Land-cover map with its confidence indices, one ``summary`` item.
LANDCOVER = ProductContract(
    "landcover",
    "landcover-optical",
    "L3-landcover",
    (
        Variable("classification", "uint8", NODATA_CLASS, "land-cover class", legend="classes"),
        Variable("confidence", "uint8", NODATA_SCORE, "confidence of the winning class (0-100)"),
        Variable("margin", "uint8", NODATA_SCORE, "top-1 minus top-2 probability (0-100)"),
        Variable(
            "entropy",
            "uint8",
            NODATA_SCORE,
            "normalised Shannon entropy of the class probabilities (0-100)",
            required=False,
        ),
        Variable(
            "probability",
            "float32",
            _NAN,
            "class probabilities (one band per class code)",
            unit="1",
            bands="class",
        ),
    ),
    metadata_assets={"model": "application/json"},
    extensions=_CLASSIFIED,
)
#: Collection ids of the land-cover products, per sensor set.
LANDCOVER_COLLECTIONS: Mapping[str, str] = MappingProxyType(
    {
        "optical": "landcover-optical",
        "radar": "landcover-radar",
        "stacked": "landcover-stacked",
    }
)

#: Dempster-Shafer fused land cover with belief, plausibility and conflict.
FUSED = ProductContract(
    "fused",
    "landcover-fused",
    "L3-landcover-fused",
    (
        Variable(
            "fused_class", "uint8", NODATA_CLASS, "fused class (255 undecided)", legend="fused"
        ),
        Variable("belief", "float32", _NAN, "belief of the fused class", unit="1"),
        Variable("plausibility", "float32", _NAN, "plausibility of the fused class", unit="1"),
        Variable("conflict", "float32", _NAN, "conflict K between the sources", unit="1"),
        Variable("ignorance", "float32", _NAN, "mass left on the whole frame", unit="1"),
        Variable("confidence", "float32", _NAN, FUSED_CONFIDENCE_DEFINITION, unit="1"),
        Variable(
            "agreement", "uint8", None, "which source the fused class came from", legend="agreement"
        ),
        Variable(
            "source_confidence",
            "float32",
            _NAN,
            "confidence of each source",
            unit="1",
            required=False,
        ),
    ),
    extensions=_CLASSIFIED,
)

_EXTENT_VARIABLES = (
    Variable("water", "uint8", NODATA_SCORE, "water (1) or not (0)", legend="binary"),
    Variable("flood", "uint8", NODATA_SCORE, "flood (1) or not (0)", legend="binary"),
    Variable("likelihood", "uint8", NODATA_SCORE, "likelihood of water (0-100)"),
)
#: Flood extent per SAR date: water, flood (water minus reference water), likelihood.
FLOOD_EXTENT = ProductContract(
    "flood-extent", "flood-extent", "L3-flood", _EXTENT_VARIABLES, per_date=True,
    extensions=_CLASSIFIED,
)  # fmt: skip

#: Flood time-series products and flood risk, one ``summary`` item with the zone table.
FLOOD_RISK = ProductContract(
    "flood-risk",
    "flood-risk",
    "L4-flood-risk",
    (
        Variable("max_extent", "uint8", NODATA_SCORE, "ever flooded", legend="extent"),
        Variable("frequency", "float32", _NAN, "share of valid dates flooded", unit="1"),
        Variable("n_valid", "uint16", None, "number of valid SAR dates"),
        Variable("reference_water", "uint8", NODATA_SCORE, "permanent water", legend="reference"),
        Variable("exclusion", "uint8", NODATA_SCORE, "exclusion bits (EXCLUSION_FLAGS)"),
        Variable("hazard", "float32", _NAN, "flood hazard (0-1)", unit="1"),
        Variable("risk", "float32", _NAN, "flood risk (0-1)", unit="1"),
        Variable("risk_class", "uint8", NODATA_CLASS, "risk class 1-5", legend="risk"),
        Variable(
            "max_extent_low", "uint8", NODATA_SCORE, "ever flooded, lower bound", legend="extent"
        ),
        Variable(
            "max_extent_high", "uint8", NODATA_SCORE, "ever flooded, upper bound", legend="extent"
        ),
    ),
    extensions=_CLASSIFIED,
)

#: Every product contract by kind.
CONTRACTS: Mapping[str, ProductContract] = MappingProxyType(
    {
        c.kind: c
        for c in (S2_ARD, S2_SERIES, S1_ARD, RCM_ARD, LANDCOVER, FUSED, FLOOD_EXTENT, FLOOD_RISK)
    }
)
#: The ARD contracts by sensor key.
ARD_CONTRACTS: Mapping[str, ProductContract] = MappingProxyType(
    {"s2": S2_ARD, "s2-series": S2_SERIES, "s1": S1_ARD, "rcm": RCM_ARD}
)
#: Default collection id of each product kind.
PRODUCT_COLLECTIONS: Mapping[str, str] = MappingProxyType(
    {k: c.collection for k, c in CONTRACTS.items()}
)


def contract_for(level: str) -> ProductContract | None:
    """The contract of a product from its ``processing:level`` (None for a source collection).

    Parameters
    ----------
    level
        The ``processing:level`` of an item.

    Returns
    -------
    ProductContract or None

    Examples
    --------
    >>> contract_for("L3-landcover").kind
    'landcover'
    >>> contract_for("L2A") is None
    True
    """
    if level == "L2A-ARD":
        return S2_ARD
    if level == "L2-ARD":
        return S1_ARD
    return next((c for c in CONTRACTS.values() if c.level == level), None)
