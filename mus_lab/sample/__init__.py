"""Generated multi-sensor scenario: Sentinel-2, Sentinel-1, RCM, DEM and truth.

:func:`generate` writes a self-contained STAC catalog of Cloud-Optimised GeoTIFFs
whose pixels follow one consistent landscape (terrain, land cover, parcels, a spring
flood), so every later stage of mus_lab can be tested and taught offline with a
known truth. The layout is fixed by ``docs/design/0001-data-contracts.md``.
"""

from __future__ import annotations

from mus_lab.sample._api import generate
from mus_lab.sample._params import LEGEND, Realism
from mus_lab.sample._scenario import Scenario

__all__ = ["LEGEND", "Realism", "Scenario", "generate"]
