"""English and French labels of the dashboards: one small table, looked up by key.

The programme is Canadian: every label a decision-maker reads exists in both languages, and a
test checks that no key lacks a translation. The tables live in ``labels.yaml`` next to this
module (a file translators edit without touching code), read once at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LANDCOVER_NAMES",
    "LANGUAGES",
    "RISK_CLASSES",
    "TRANSLATIONS",
    "Language",
    "class_name",
    "risk_name",
    "translate",
]

Language = Literal["en", "fr"]

#: Languages offered by the dashboards, with the name shown on the switch.
LANGUAGES: dict[str, str] = {"en": "English", "fr": "Français"}


def _load_tables() -> dict[str, Any]:
    """The tables of ``labels.yaml`` (the translators' file, next to this module)."""
    import yaml

    path = Path(__file__).with_name("labels.yaml")
    tables: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tables


_TABLES = _load_tables()

#: Every label of the dashboards by key: ``{"en": ..., "fr": ...}`` (``str.format`` fields alike).
TRANSLATIONS: dict[str, dict[str, str]] = _TABLES["labels"]
#: Risk classes of the ``flood-risk`` product (``risk_class`` 1-5; 0 is no data).
RISK_CLASSES: dict[int, dict[str, str]] = {int(k): v for k, v in _TABLES["risk_classes"].items()}
#: Land-cover class names by English name (the scenario legend and the products' class_name).
LANDCOVER_NAMES: dict[str, dict[str, str]] = _TABLES["landcover_names"]


def _pick(entry: Mapping[str, str], language: str) -> str:
    """``entry[language]``, English when the language is missing."""
    return entry.get(language, entry["en"])


def translate(key: str, language: str = "en", /, **values: Any) -> str:
    """The label ``key`` in ``language`` (``"en"`` or ``"fr"``), formatted with ``values``.

    An unknown language falls back to English; an unknown key raises ``KeyError`` (a typo in
    a view must fail its test, not show a blank).

    Parameters
    ----------
    key : str
        A key of :data:`TRANSLATIONS` (``"flood_title"``, ``"no_products"``...).
    language : str, optional
        ``"en"`` (default) or ``"fr"``; any other code gives English.
    **values
        The label's ``str.format`` fields (``what``, ``catalog``, ``date``...).

    Returns
    -------
    str
        The label, formatted when ``values`` are given.

    Examples
    --------
    >>> translate("no_products", "fr", what="de risque d'inondation", catalog="cat.json")
    "Pas encore de produits de risque d'inondation dans cat.json."
    >>> translate("flood_title", "de")
    'Flood risk'
    """
    text = _pick(TRANSLATIONS[key], language)
    return text.format(**values) if values else text


def risk_name(code: int, language: str = "en") -> str:
    """Name of a risk class (1 very low ... 5 very high) in ``language``.

    Parameters
    ----------
    code : int
        A ``risk_class`` value of the ``flood-risk`` product, 1 to 5.
    language : str, optional
        ``"en"`` (default) or ``"fr"``.

    Returns
    -------
    str
        The class name; an unknown code (0 = no data) is returned as its number.

    Examples
    --------
    >>> risk_name(5), risk_name(3, "fr"), risk_name(0)
    ('very high', 'moyen', '0')
    """
    entry = RISK_CLASSES.get(int(code))
    return _pick(entry, language) if entry else str(code)


def class_name(
    name: str, language: str = "en", names: Mapping[str, Mapping[str, str]] = LANDCOVER_NAMES
) -> str:
    """A land-cover class name (English, as in the legend) in ``language``; unknown names pass.

    Parameters
    ----------
    name : str
        English class name as a product's legend writes it (any case).
    language : str, optional
        ``"en"`` (default) or ``"fr"``.
    names : mapping, optional
        Translations by lower-case English name (default :data:`LANDCOVER_NAMES`).

    Returns
    -------
    str
        The translated name, or ``name`` unchanged when the table does not know it (a
        legend a user trained with their own class names).

    Examples
    --------
    >>> class_name("Forest", "fr"), class_name("orchard", "fr")
    ('forêt', 'orchard')
    """
    entry = names.get(str(name).lower())
    return _pick(entry, language) if entry else str(name)
