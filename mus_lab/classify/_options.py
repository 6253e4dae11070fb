"""Options of the feature recipe: which sensors, which dates, which variables.

A :class:`FeatureOptions` and the search (catalog, area, period) make a *recipe*: the JSON a
model records (``ModelMetadata.recipe``) so that ``mus-lab landcover predict`` rebuilds the very
features the model was trained on, whether it was trained through
:func:`mus_lab.recipes.features_from_catalog` or through the stage functions one by one (each
stage adds what it did to the cube's ``attrs["mus_lab:recipe"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from mus_lab.classify._features import IOTA2_OPTICAL
from mus_lab.contracts import COLLECTIONS, RECIPE_ATTR
from mus_lab.errors import FeatureMismatchError

__all__ = ["RECIPE_ATTR", "SENSOR_SETS", "FeatureOptions", "recipe_of"]

SensorSet = Literal["optical", "radar", "stacked"]
SENSOR_SETS: tuple[str, ...] = ("optical", "radar", "stacked")


@dataclass(frozen=True)
class FeatureOptions:
    """How to build a feature cube from a catalog.

    Attributes
    ----------
    sensors
        ``"optical"`` (Sentinel-2 gap-filled series, IOTA²'s features), ``"radar"``
        (Sentinel-1 and, when present, RCM period means) or ``"stacked"`` (both, on the optical
        date grid).
    every_days
        Date grid spacing (optical gap-filling and radar periods).
    optical_variables
        Optical variables (default IOTA²'s: ten bands, NDVI, NDWI, brightness).
    speckle
        Speckle filter for radar (``None`` for none).
    radar_sources
        Radar collections to use when present (prefixes ``s1``, ``rcm``).
    optical_source
        Sentinel-2 L2A collection of the optical and stacked sets (also the reference grid).

    Examples
    --------
    >>> FeatureOptions(sensors="radar").to_dict()["sensors"]
    'radar'
    >>> FeatureOptions.from_dict({"sensors": "stacked", "every_days": 20}).every_days
    20
    """

    sensors: SensorSet = "optical"
    every_days: int = 10
    optical_variables: tuple[str, ...] = IOTA2_OPTICAL
    speckle: Literal["lee", "refined_lee", "lee_sigma"] | None = "refined_lee"
    radar_sources: tuple[str, ...] = (COLLECTIONS["s1"], COLLECTIONS["rcm"])
    optical_source: str = COLLECTIONS["s2"]

    def __post_init__(self) -> None:
        if self.sensors not in SENSOR_SETS:
            raise FeatureMismatchError(
                f"sensors must be one of {SENSOR_SETS}, got {self.sensors!r}."
            )
        if int(self.every_days) < 1:
            raise FeatureMismatchError(f"every_days={self.every_days}: give at least 1 day.")
        object.__setattr__(self, "optical_variables", tuple(self.optical_variables))
        object.__setattr__(self, "radar_sources", tuple(self.radar_sources))

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-friendly values.

        Returns
        -------
        dict
        """
        doc = asdict(self)
        doc["optical_variables"] = list(self.optical_variables)
        doc["radar_sources"] = list(self.radar_sources)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FeatureOptions:
        """Options from a recipe (unknown keys such as ``bbox`` are ignored).

        Parameters
        ----------
        doc
            A recipe or options mapping.

        Returns
        -------
        FeatureOptions

        Raises
        ------
        FeatureMismatchError
            An option has an impossible value.
        """
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in doc.items() if k in known and v is not None}
        if "speckle" in doc:
            kw["speckle"] = doc["speckle"]
        for key in ("optical_variables", "radar_sources"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


def recipe_of(obj: Any) -> dict[str, Any]:
    """The recipe a cube records (``attrs["mus_lab:recipe"]``), as a plain dict.

    Parameters
    ----------
    obj
        A Dataset or DataArray made by the stages (or anything with ``attrs``).

    Returns
    -------
    dict
        Empty when the cube records none.

    Examples
    --------
    >>> recipe_of(xr.DataArray([1], attrs={"mus_lab:recipe": {"sensors": "optical"}}))
    {'sensors': 'optical'}
    """
    raw = getattr(obj, "attrs", {}).get(RECIPE_ATTR) or {}
    if isinstance(raw, str):
        import json

        raw = json.loads(raw)
    return dict(raw)
