"""Flood risk: hazard x exposure x vulnerability, classed 1-5 (UNDRR's decomposition).

* **hazard** (0-1): the likelihood-weighted flood frequency of the time series
  (:func:`~mus_lab.flood.flood_summary`): the expected share of valid observations that
  are flooded. Reference water and never-observed pixels have none.
* **exposure** (0-1): per land-cover class, from the configuration; with a population
  or asset raster, ``(1 - w) * class exposure + w * min(density / saturation, 1)``.
* **vulnerability** (0-1): per land-cover class, from the configuration.

``risk = hazard * exposure * vulnerability``, divided by its maximum over the area
(``normalise: max``, the default: a relative risk) and classed by fixed breaks
(0.2, 0.4, 0.6, 0.8) into 1 very low ... 5 very high; 0 = no data. The defaults live in
the packaged ``risk_defaults.yaml`` (documented there) and any part can be overridden by
a YAML file of the same shape (:meth:`RiskConfig.load`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import xarray as xr
import yaml

from mus_lab.cube import match_grid, pixel_area_m2
from mus_lab.errors import RiskConfigError
from mus_lab.flood._grid import keep_grid

__all__ = ["ClassWeights", "RiskConfig", "risk"]


@dataclass(frozen=True)
class ClassWeights:
    """Exposure and vulnerability of one land-cover class."""

    name: str
    exposure: float
    vulnerability: float


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _unit(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise RiskConfigError(f"{what} = {value!r} must be a number between 0 and 1.") from None
    if not 0.0 <= v <= 1.0:
        raise RiskConfigError(f"{what} = {v} must lie between 0 and 1.")
    return v


@dataclass(frozen=True)
class RiskConfig:
    """Weights and classing of the flood-risk product (see ``risk_defaults.yaml``).

    Use :meth:`default` or :meth:`load` (a YAML path or a mapping merged onto the
    defaults).
    """

    classes: Mapping[int, ClassWeights]
    water_classes: tuple[int, ...]
    population_weight: float
    population_saturation_per_ha: float
    normalise: str
    breaks: tuple[float, ...]
    class_names: tuple[str, ...]
    at_risk_min_class: int
    likelihood_bounds: tuple[int, int]
    source: str = "defaults"

    @staticmethod
    def defaults_path() -> Path:
        """The packaged YAML of documented defaults.

        Returns
        -------
        pathlib.Path
            ``mus_lab/flood/data/risk_defaults.yaml``: copy it to start a configuration.
        """
        return Path(str(resources.files("mus_lab.flood") / "data" / "risk_defaults.yaml"))

    @classmethod
    def default(cls) -> RiskConfig:
        """The packaged defaults.

        Returns
        -------
        RiskConfig
            ``source == "defaults"``.

        Examples
        --------
        >>> RiskConfig.default().breaks
        (0.2, 0.4, 0.6, 0.8)
        """
        return cls.load(None)

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Mapping[str, Any] | None) -> RiskConfig:
        """Defaults overridden by a YAML file or a mapping of the same shape.

        Parameters
        ----------
        source
            YAML path, a mapping (merged key by key onto the defaults, e.g.
            ``{"classes": {4: {"exposure": 0.1}}}``), or ``None`` for the defaults.

        Returns
        -------
        RiskConfig
            ``source`` records where it came from (for provenance).

        Raises
        ------
        RiskConfigError
            The file is missing or unreadable, or a value is out of range.
        """
        base = yaml.safe_load(cls.defaults_path().read_text())
        label = "defaults"
        if source is not None and not isinstance(source, Mapping):
            path = Path(source)
            try:
                over = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise RiskConfigError(
                    f"Cannot read the risk configuration {path} ({exc}): give a YAML file shaped "
                    f"like {cls.defaults_path()}."
                ) from exc
            if not isinstance(over, Mapping):
                raise RiskConfigError(f"{path} must hold a YAML mapping (keys such as 'classes').")
            label = str(path)
        else:
            over = dict(source or {})
            label = "defaults" if not over else "defaults + mapping"
        return cls._from_doc(_merge(base, over), label)

    @classmethod
    def _from_doc(cls, doc: Mapping[str, Any], label: str) -> RiskConfig:
        try:
            classes = {
                int(code): ClassWeights(
                    str(v.get("name", code)),
                    _unit(v.get("exposure"), f"classes.{code}.exposure"),
                    _unit(v.get("vulnerability"), f"classes.{code}.vulnerability"),
                )
                for code, v in dict(doc["classes"]).items()
            }
            breaks = tuple(float(b) for b in doc["breaks"])
            names = tuple(str(n) for n in doc["class_names"])
            pop = dict(doc.get("population", {}))
            bounds = dict(doc["likelihood_bounds"])
            config = cls(
                classes=classes,
                water_classes=tuple(int(c) for c in doc.get("water_classes", ())),
                population_weight=_unit(pop.get("weight", 0.5), "population.weight"),
                population_saturation_per_ha=float(pop.get("saturation_per_ha", 50.0)),
                normalise=str(doc.get("normalise", "max")),
                breaks=breaks,
                class_names=names,
                at_risk_min_class=int(doc.get("at_risk_min_class", 4)),
                likelihood_bounds=(int(bounds["low"]), int(bounds["high"])),
                source=label,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, RiskConfigError):
                raise
            raise RiskConfigError(
                f"Malformed risk configuration ({label}): {exc!r}. Follow the layout of "
                f"{cls.defaults_path()}."
            ) from exc
        if len(breaks) != 4 or list(breaks) != sorted(breaks):
            raise RiskConfigError(f"breaks {breaks} must be 4 increasing numbers (5 classes).")
        if len(names) != 5:
            raise RiskConfigError(f"class_names must name the 5 risk classes, got {names}.")
        if config.normalise not in ("max", "none"):
            raise RiskConfigError(f"normalise={config.normalise!r}: choose 'max' or 'none'.")
        if not 1 <= config.at_risk_min_class <= 5:
            raise RiskConfigError("at_risk_min_class must be a risk class from 1 to 5.")
        if config.population_saturation_per_ha <= 0:
            raise RiskConfigError("population.saturation_per_ha must be positive.")
        return config

    def table(self, field: str) -> np.ndarray:
        """A lookup table of one weight by land-cover code.

        Parameters
        ----------
        field
            ``"exposure"`` or ``"vulnerability"``.

        Returns
        -------
        numpy.ndarray
            float32, 256 entries indexed by class code; NaN for codes without weights.

        Examples
        --------
        >>> table = RiskConfig.default().table("exposure")
        >>> table.shape, bool(np.isnan(table[0]))
        ((256,), True)
        """
        out = np.full(256, np.nan, np.float32)
        for code, w in self.classes.items():
            if 0 <= code < 256:
                out[code] = getattr(w, field)
        return out

    def to_parameters(self) -> dict[str, Any]:
        """Plain values for STAC provenance (``mus_lab:parameters`` of the risk product).

        Returns
        -------
        dict
            ``source``, ``classes`` (name, exposure, vulnerability by code), ``normalise``,
            ``breaks``, the population settings, ``at_risk_min_class`` and
            ``likelihood_bounds``, as JSON values.
        """
        return {
            "source": self.source,
            "classes": {
                str(k): {"name": v.name, "exposure": v.exposure, "vulnerability": v.vulnerability}
                for k, v in self.classes.items()
            },
            "normalise": self.normalise,
            "breaks": list(self.breaks),
            "population_weight": self.population_weight,
            "population_saturation_per_ha": self.population_saturation_per_ha,
            "at_risk_min_class": self.at_risk_min_class,
            "likelihood_bounds": list(self.likelihood_bounds),
        }


def _lookup(codes: xr.DataArray, table: np.ndarray) -> xr.DataArray:
    def apply(block: np.ndarray) -> np.ndarray:
        idx = np.clip(np.asarray(block), 0, 255).astype(np.intp)
        return table[idx]

    return xr.apply_ufunc(apply, codes, dask="parallelized", output_dtypes=[np.float32])


def _risk_classes(value: np.ndarray, breaks: tuple[float, ...]) -> np.ndarray:
    """1-5 by the upper ``breaks`` of (clamped) risk; 0 where risk is NaN."""
    v = np.clip(np.asarray(value, dtype=np.float64), 0.0, 1.0)
    out = (1 + np.searchsorted(np.asarray(breaks), v, side="right")).astype(np.uint8)
    out[np.isnan(v)] = 0
    return out


def _pixel_area_ha(obj: xr.DataArray) -> float:
    """Pixel area in ha (at the centre latitude on a geographic grid; NaN without a CRS)."""
    gbox = obj.odc.geobox
    if gbox is None or gbox.crs is None:
        return float("nan")
    return pixel_area_m2(gbox) / 10_000.0


def risk(
    summary: xr.Dataset,
    landcover: xr.DataArray,
    *,
    population: xr.DataArray | None = None,
    config: RiskConfig | None = None,
) -> xr.Dataset:
    """Hazard x exposure x vulnerability, normalised and classed, lazily.

    Parameters
    ----------
    summary
        :func:`~mus_lab.flood.flood_summary` output (needs ``hazard``).
    landcover
        Land-cover codes on the same grid (e.g. ``classify.predict(...).classification``
        or the scenario's land-cover truth); 0 = no data.
    population
        Optional people (or asset value) per pixel on the same grid.
    config
        :class:`RiskConfig` (packaged defaults when ``None``).

    Returns
    -------
    xarray.Dataset
        ``hazard`` (float32 0-1), ``exposure`` and ``vulnerability`` (float32 0-1),
        ``risk`` (float32 0-1) and ``risk_class`` (uint8 1-5, 0 = no data).

    Raises
    ------
    GridMismatchError
        The land cover or population is on another grid (beyond 1e-6 of a pixel): they are
        not resampled here (classes and counts per pixel), load them on the summary's grid.
    """
    cfg = config or RiskConfig.default()
    landcover = match_grid(landcover, summary, names=("land cover", "the flood summary"))
    lc = landcover.drop_vars([c for c in landcover.coords if c not in ("y", "x", "spatial_ref")])
    exposure = _lookup(lc, cfg.table("exposure"))
    vulnerability = _lookup(lc, cfg.table("vulnerability"))
    if population is not None:
        population = match_grid(population, summary, names=("population", "the flood summary"))
        area = _pixel_area_ha(population)
        density = population.fillna(0).clip(min=0) / (area if area == area else 1.0)
        people = (density / cfg.population_saturation_per_ha).clip(max=1.0)
        w = cfg.population_weight
        exposure = ((1.0 - w) * exposure + w * people).where(exposure.notnull())
    hazard = summary["hazard"]
    raw = (hazard * exposure * vulnerability).astype(np.float32)
    if cfg.normalise == "max":
        top = raw.max()
        raw = raw / top.where(top > 0, 1.0)
    value = xr.ufuncs.maximum(xr.ufuncs.minimum(raw, 1.0), 0.0).astype(np.float32)
    # Classes from ``raw`` in their own step, not from ``value``: a Dataset holding both a
    # layer and a layer computed from it trips dask when computed beside another Dataset.
    risk_class = xr.apply_ufunc(
        _risk_classes,
        raw,
        kwargs={"breaks": tuple(cfg.breaks)},
        dask="parallelized",
        output_dtypes=[np.uint8],
    )
    out = xr.Dataset(
        {
            "hazard": hazard.astype(np.float32).assign_attrs(units="1"),
            "exposure": exposure.astype(np.float32).assign_attrs(units="1"),
            "vulnerability": vulnerability.astype(np.float32).assign_attrs(units="1"),
            "risk": value.assign_attrs(units="1", normalise=cfg.normalise),
            "risk_class": risk_class.assign_attrs(
                nodata=0,
                flag_values=[1, 2, 3, 4, 5],
                flag_meanings=" ".join(n.replace(" ", "_") for n in cfg.class_names),
            ),
        }
    )
    return keep_grid(out, summary)
