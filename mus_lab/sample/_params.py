"""Validated parameters, dates and fixed facts of the generated scene."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace

from mus_lab.contracts import NODATA_CLASS, SAMPLE_LEGEND
from mus_lab.errors import SampleError

__all__ = ["LEGEND", "SENSORS", "Params", "Realism", "baseline", "make_params"]

#: Land-cover legend of the sample scenario (docs/design/0001-data-contracts.md).
LEGEND: dict[int, str] = {NODATA_CLASS: "no data", **SAMPLE_LEGEND}
SENSORS = ("s2", "s1", "rcm")

UTM_EPSG = 32618
X0 = 600_000.0  # upper-left corner of the S2 10 m grid, multiples of 60 m
Y0 = 5_000_040.0
MGRS = {"utm_zone": 18, "latitude_band": "T", "grid_square": "XQ"}
MGRS_TILE = "18TXQ"
RCM_EPSG = 3978

_PB04 = dt.date(2022, 1, 25)  # Sentinel-2 processing baseline 04.00: offset -1000 DN
_PB0509 = dt.date(2022, 12, 6)


@dataclass(frozen=True)
class Realism:
    """How confusable the scenario's land-cover classes are, as on real Sentinel-1/2 data.

    The defaults are calibrated (docs/design/0015-scenario-realism.md) so that the 256 px demo
    gives figures where published Sentinel-2 / Sentinel-1 maps fall: a random forest on the
    optical series reaches OA about 0.80-0.90 on held-out polygons, on the radar series less,
    and their fusion gains where they disagree. :meth:`off` gives the former, easily separable
    scene. Everything stays deterministic given the seed.

    Attributes
    ----------
    edge_mix_px : float
        Standard deviation (10 m pixels) of the Gaussian point-spread that mixes neighbouring
        surfaces linearly (reflectance; backscatter in linear power): border pixels of a parcel
        carry 20-50 % of the next one over 1-2 px. 0: pure pixels. Optical data only.
    sar_edge_mix_px : float
        The same for the radar backscatter (10 m pixels, before sampling the SAR grids).
        Default 0: with 0.5 px the flood consensus of the scenario falls from CSI 0.77 to 0.72
        and no longer beats region growing (tests/flood/test_scenario.py); see
        docs/design/0015-scenario-realism.md.
    sos_sd_days, eos_sd_days : float
        Per-parcel spread (days) of the crops' green-up and harvest dates (sowing and
        management differ from farm to farm).
    peak_min : float
        Lowest per-parcel peak green fraction of crops and leys (drawn uniformly up to 0.95).
    winter_green : float
        Green fraction of winter cereals over winter (sown in autumn, tillering): they look
        like grassland until the spring growth.
    vigour_sd : float
        Within-parcel variability of the green fraction (a smooth 20-30 m field, relative).
    pixel_noise : float
        Relative per-pixel, per-date reflectance noise (residual atmosphere, BRDF).
    ley_share : float
        Share of grassland parcels that are sown leys (temporary grassland): their green-up,
        cut and regrowth follow a spring crop's curve (optical confuses them with crops), their
        short dense sward backscatters as grassland (radar keeps them apart).
    low_biomass_share : float
        Share of crop parcels of low biomass (thin cereals, legumes): their VH volume term is
        that of grassland, so radar confuses them with grassland while their spectra (bare soil
        between rows, senescence before harvest) keep them apart in optical data.
    urban_soil_max : float
        Per-block share of bare soil (lots, sites) in urban pixels, up to this value: such
        blocks look like bare land to optical sensors; double bounce keeps radar apart.
    urban_sar_sd_db : float
        Per-block spread (dB) of urban backscatter (street orientation against the look
        direction): dark blocks look like forest to radar; optical keeps them apart.
    marsh_water : float
        Factor on the visible open water of wetlands: low values make vegetated marsh look like
        wet grassland to optical sensors; radar sees its spring double bounce.
    sar_parcel_db : float
        Per-parcel backscatter anomaly (dB; roughness, moisture, row direction) of crops and
        grassland.
    cloud_spell_share : float
        Share of the scene under a persistent cloudy spell (a front stalled over the area)
        between ``cloud_spell_doy`` days of year: those pixels lose the key dates of the summer
        crops' green-up to the clouds.
    cloud_spell_doy : tuple of float
        First and last day of year of the cloudy spell.
    label_noise : float
        Share of the reference polygons whose ``code`` is wrong (a confusable class, as field
        surveys and photo-interpretation err); column ``code_true`` keeps the truth, and the
        land-cover raster (``landcover.tif``) is always the truth.
    """

    edge_mix_px: float = 0.9
    sar_edge_mix_px: float = 0.0
    sos_sd_days: float = 15.0
    eos_sd_days: float = 12.0
    peak_min: float = 0.45
    vigour_sd: float = 0.12
    pixel_noise: float = 0.05
    winter_green: float = 0.3
    ley_share: float = 0.45
    low_biomass_share: float = 0.55
    urban_soil_max: float = 0.6
    urban_sar_sd_db: float = 3.0
    marsh_water: float = 0.5
    sar_parcel_db: float = 2.0
    cloud_spell_share: float = 0.45
    cloud_spell_doy: tuple[float, float] = (130.0, 215.0)
    label_noise: float = 0.03

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in values):
                raise SampleError(
                    f"Realism.{f.name}={value!r} must be a non-negative number (0 turns it off)"
                )
        for name in (
            "peak_min",
            "winter_green",
            "ley_share",
            "low_biomass_share",
            "urban_soil_max",
            "cloud_spell_share",
            "label_noise",
        ):
            if getattr(self, name) > 1:
                raise SampleError(f"Realism.{name}={getattr(self, name)!r} is a share: pass 0 to 1")
        if len(self.cloud_spell_doy) != 2 or self.cloud_spell_doy[0] > self.cloud_spell_doy[1]:
            raise SampleError(
                f"Realism.cloud_spell_doy={self.cloud_spell_doy!r} must be (first, last) day of "
                "year, first <= last, e.g. (135, 200)"
            )

    @classmethod
    def off(cls) -> Realism:
        """The easily separable scene: pure pixels, little variability, clear skies in summer.

        Returns
        -------
        Realism
            The knobs at the values of the generator before the calibration.

        Examples
        --------
        >>> Realism.off().label_noise, Realism().label_noise > 0
        (0.0, True)
        """
        return replace(
            cls(),
            edge_mix_px=0.0,
            sos_sd_days=9.0,
            eos_sd_days=9.0,
            peak_min=0.65,
            vigour_sd=0.0,
            winter_green=0.0,
            pixel_noise=0.03,
            ley_share=0.0,
            low_biomass_share=0.0,
            urban_soil_max=0.0,
            urban_sar_sd_db=0.0,
            marsh_water=1.0,
            sar_parcel_db=0.8,
            cloud_spell_share=0.0,
            label_noise=0.0,
        )


@dataclass(frozen=True)
class Params:
    """Checked arguments of :func:`mus_lab.sample.generate`."""

    size: int
    seed: int
    start: dt.date
    end: dt.date
    s2_every_days: int
    s1_every_days: int
    rcm_every_days: int
    sensors: tuple[str, ...]
    realism: Realism = Realism()

    def dates(self, sensor: str) -> tuple[dt.date, ...]:
        """Acquisition dates of ``sensor`` (empty when the sensor is not asked for)."""
        if sensor not in self.sensors:
            return ()
        step = {"s2": self.s2_every_days, "s1": self.s1_every_days, "rcm": self.rcm_every_days}
        # Sensors start on different days, as real constellations do.
        first = self.start + dt.timedelta(days={"s2": 0, "s1": 2, "rcm": 5}[sensor])
        out = []
        day = first
        while day <= self.end:
            out.append(day)
            day += dt.timedelta(days=step[sensor])
        return tuple(out)


def baseline(day: dt.date) -> tuple[str, float]:
    """Sentinel-2 processing baseline in force on ``day`` and its reflectance offset."""
    if day < _PB04:
        return "03.01", 0.0
    if day < _PB0509:
        return "04.00", -0.1
    return "05.09", -0.1


def _date(value: object, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise SampleError(
            f"{name}={value!r} is not a date: pass an ISO date such as '2022-04-15'"
        ) from exc


def make_params(
    *,
    size: int,
    seed: int,
    start: object,
    end: object,
    s2_every_days: int,
    s1_every_days: int,
    rcm_every_days: int,
    sensors: tuple[str, ...] | list[str],
    realism: Realism | None = None,
) -> Params:
    """Check the arguments of ``generate`` and return them as :class:`Params`.

    Raises
    ------
    SampleError
        With a message saying which argument to change and how.
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise SampleError(f"size={size!r} must be an int number of 10 m pixels, e.g. 256")
    if not 64 <= size <= 10980 or size % 2:
        raise SampleError(
            f"size={size} is not allowed: pass an even number of 10 m pixels between 64 "
            "(a tiny test scene) and 10980 (a full Sentinel-2 tile)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SampleError(f"seed={seed!r} must be a non-negative int, e.g. seed=42")
    d0, d1 = _date(start, "start"), _date(end, "end")
    if d1 < d0:
        raise SampleError(f"end={d1} is before start={d0}: swap them or move end later")
    for name, val in (
        ("s2_every_days", s2_every_days),
        ("s1_every_days", s1_every_days),
        ("rcm_every_days", rcm_every_days),
    ):
        if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
            raise SampleError(f"{name}={val!r} must be a positive int number of days, e.g. 12")
    if isinstance(sensors, str):
        sensors = (sensors,)
    wanted = tuple(dict.fromkeys(str(s).lower() for s in sensors))
    unknown = [s for s in wanted if s not in SENSORS]
    if unknown or not wanted:
        raise SampleError(
            f"sensors={tuple(sensors)!r} is not allowed: choose one or more of {SENSORS}"
        )
    return Params(
        size=size,
        seed=seed,
        start=d0,
        end=d1,
        s2_every_days=s2_every_days,
        s1_every_days=s1_every_days,
        rcm_every_days=rcm_every_days,
        sensors=tuple(s for s in SENSORS if s in wanted),
        realism=_realism(realism),
    )


def _realism(realism: object) -> Realism:
    if realism is None:
        return Realism()
    if not isinstance(realism, Realism):
        raise SampleError(
            f"realism={realism!r} must be a mus_lab.sample.Realism, e.g. Realism() (the "
            "calibrated defaults) or Realism.off() (separable classes)"
        )
    return realism
