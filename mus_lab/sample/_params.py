"""Validated parameters, dates and fixed facts of the generated scene."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mus_lab.contracts import NODATA_CLASS, SAMPLE_LEGEND
from mus_lab.errors import SampleError

__all__ = ["LEGEND", "SENSORS", "Params", "baseline", "make_params"]

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
    )
