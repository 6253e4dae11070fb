"""Shared state of the writers: folders, landscape, traits and progress."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from affine import Affine

from mus_lab.sample._landscape import Landscape
from mus_lab.sample._params import X0, Y0, Params
from mus_lab.sample._pheno import ParcelTraits

__all__ = ["Ctx", "when"]


class Ctx:
    """What every writer needs: folders, landscape, traits and progress."""

    def __init__(
        self, tmp: Path, p: Params, land: Landscape, traits: ParcelTraits, bar: Any, version: str
    ) -> None:
        self.tmp, self.p, self.land, self.traits, self.bar = tmp, p, land, traits, bar
        self.cat = tmp / "catalog"
        self.proc = {"processing:software": {"mus_lab.sample": version}, "processing:level": "L2"}
        self.s2_transform = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)

    def folder(self, collection: str, item_id: str) -> Path:
        path = self.cat / collection / item_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def done(self, k: int = 1) -> None:
        self.bar.update(k)


def when(day: dt.date, hour: float) -> dt.datetime:
    """UTC time ``hour`` hours after midnight of ``day``."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(hours=hour)
