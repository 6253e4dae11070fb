"""Class colours and STAC classification-extension entries for land-cover legends."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["class_colors", "stac_classes"]

# Colour by a word of the class name (CORINE/OSO-like), then a qualitative palette.
_BY_WORD = {
    "crop": "E6C229",
    "cultivat": "E6C229",
    "arable": "E6C229",
    "grass": "9ACD32",
    "meadow": "9ACD32",
    "pasture": "9ACD32",
    "forest": "1B5E20",
    "tree": "1B5E20",
    "shrub": "6B8E23",
    "schrub": "6B8E23",
    "water": "1F78B4",
    "wetland": "4DB6AC",
    "marsh": "4DB6AC",
    "urban": "D62728",
    "artificial": "D62728",
    "built": "D62728",
    "bare": "BDB76B",
    "snow": "F0F8FF",
    "tundra": "C8B99C",
}
_PALETTE = (
    "8C564B",
    "E377C2",
    "7F7F7F",
    "17BECF",
    "BCBD22",
    "FF7F0E",
    "9467BD",
    "AEC7E8",
    "FFBB78",
    "98DF8A",
    "FF9896",
    "C5B0D5",
)


def class_colors(class_names: Mapping[int, str]) -> dict[int, str]:
    """A hex colour (``RRGGBB``) per class code, chosen from the class name when it says what
    it is (crops, grassland, forest, water, wetland, urban, bare...), else from a palette.

    Parameters
    ----------
    class_names
        Class code -> name.

    Returns
    -------
    dict
        Class code -> ``RRGGBB``.

    Examples
    --------
    >>> class_colors({1: "Forest", 2: "lake water", 3: "something"})
    {1: '1B5E20', 2: '1F78B4', 3: '8C564B'}
    """
    out: dict[int, str] = {}
    spare = iter(_PALETTE * 4)
    for code in sorted(class_names):
        name = str(class_names[code]).lower()
        hit = next((c for w, c in _BY_WORD.items() if w in name), None)
        out[int(code)] = hit or next(spare)
    return out


def _slug(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_-]+", "_", name.strip()).strip("_")
    return s or "class"


def stac_classes(
    class_names: Mapping[int, str],
    colors: Mapping[int, str] | None = None,
    *,
    nodata: int | None = 0,
) -> list[dict[str, Any]]:
    """``classification:classes`` entries (value, name, title, color_hint; a no-data entry).

    Parameters
    ----------
    class_names
        Class code -> name.
    colors
        Hex colours per code overriding :func:`class_colors` (``"#RRGGBB"`` or ``"RRGGBB"``).
    nodata
        Code of the no-data entry (None: no such entry).

    Returns
    -------
    list of dict
        One entry per code, the no-data one first.

    Examples
    --------
    >>> [c["name"] for c in stac_classes({1: "Crops", 2: "Bare soil"})]
    ['no_data', 'Crops', 'Bare_soil']
    """
    cols = dict(class_colors(class_names))
    cols.update({int(k): v.lstrip("#").upper() for k, v in (colors or {}).items()})
    entries: list[dict[str, Any]] = []
    if nodata is not None:
        entries.append(
            {"value": int(nodata), "name": "no_data", "title": "no data", "nodata": True}
        )
    for code in sorted(class_names):
        title = str(class_names[code])
        entries.append(
            {
                "value": int(code),
                "name": _slug(title),
                "title": title,
                "color_hint": cols[int(code)],
            }
        )
    return entries
