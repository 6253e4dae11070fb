"""Flood mapping from SAR and the flood-risk product.

Water from Sentinel-1 and RCM ARD (dB, on the Sentinel-2 grid) by three SAR methods, a
tiled bimodal threshold (HydroSAR's EM or Otsu), change detection against a per-orbit
reference (UN-SPIDER) and region growing from confident seeds, plus an optical vote
where Sentinel-2 is cloud-free, combined by consensus with a likelihood (Copernicus
GFM's design). Flood is water minus reference water, outside an exclusion mask (HAND
from pyflwdir, slope, layover/shadow, look-alikes). The time series gives maximum
extent, frequency and valid observations; with land cover it gives hazard x exposure x
vulnerability, risk classes and per-zone tables. Everything is lazy until written.

The whole product from a catalog (search, ARD, mapping, risk, writing) is the recipe
:func:`mus_lab.recipes.run_risk`; this package takes data.

Examples
--------
>>> from mus_lab import flood
>>> flood.MappingOptions().methods
('threshold', 'change', 'region')
"""

from mus_lab.flood._accuracy import align_truth, flood_scores, method_scores
from mus_lab.flood._consensus import (
    VoteRule,
    consensus,
    majority_rule,
    mean_rule,
    weighted_majority_rule,
    with_optical,
)
from mus_lab.flood._depth import DepthEstimator, flood_depth, water_level
from mus_lab.flood._evidence import (
    optical_evidence,
    orbit_references,
    sar_evidence,
    sar_polarisations,
    self_trained_models,
)
from mus_lab.flood._file import map_geotiff
from mus_lab.flood._mapping import FloodMaps, map_flood, map_water, source_floods
from mus_lab.flood._options import ALL_METHODS, METHODS, MappingOptions
from mus_lab.flood._products import (
    EXCLUSION_FLAGS,
    combine_series,
    exclusion_mask,
    flood_extent,
    flood_summary,
    reference_water,
)
from mus_lab.flood._risk import ClassWeights, RiskConfig, risk
from mus_lab.flood._series import SENSOR_COLLECTIONS, RiskRun, assess, map_series, terrain_from_dem
from mus_lab.flood._terrain import hand_from_dem, slope_from_dem, terrain_on_grid
from mus_lab.flood._threshold import (
    ashman_d,
    bimodality_coefficient,
    em_threshold,
    em_threshold_histogram,
    hydrosar_tiles_threshold,
    otsu_threshold,
    otsu_threshold_histogram,
)
from mus_lab.flood._zones import ZONE_COLUMNS, grid_zones, read_zones, zone_table

__all__ = [
    "ALL_METHODS",
    "EXCLUSION_FLAGS",
    "METHODS",
    "SENSOR_COLLECTIONS",
    "ZONE_COLUMNS",
    "ClassWeights",
    "DepthEstimator",
    "FloodMaps",
    "MappingOptions",
    "RiskConfig",
    "RiskRun",
    "VoteRule",
    "align_truth",
    "ashman_d",
    "assess",
    "bimodality_coefficient",
    "combine_series",
    "consensus",
    "em_threshold",
    "em_threshold_histogram",
    "exclusion_mask",
    "flood_depth",
    "flood_extent",
    "flood_scores",
    "flood_summary",
    "grid_zones",
    "hand_from_dem",
    "hydrosar_tiles_threshold",
    "majority_rule",
    "map_flood",
    "map_geotiff",
    "map_series",
    "map_water",
    "mean_rule",
    "method_scores",
    "optical_evidence",
    "orbit_references",
    "otsu_threshold",
    "otsu_threshold_histogram",
    "read_zones",
    "reference_water",
    "risk",
    "sar_evidence",
    "sar_polarisations",
    "self_trained_models",
    "slope_from_dem",
    "source_floods",
    "terrain_from_dem",
    "terrain_on_grid",
    "water_level",
    "weighted_majority_rule",
    "with_optical",
    "zone_table",
]


def __getattr__(name: str) -> object:
    if name == "CombinationRule":  # renamed for one release: fusion.CombinationRule is D-S's
        import warnings

        warnings.warn(
            "flood.CombinationRule is now flood.VoteRule (fusion.CombinationRule is the "
            "Dempster-Shafer combination rule).",
            DeprecationWarning,
            stacklevel=2,
        )
        return VoteRule
    raise AttributeError(f"module 'mus_lab.flood' has no attribute {name!r}")
