"""English and French labels of the dashboards: one small table, looked up by key.

The programme is Canadian: every label a decision-maker reads exists in both languages, and a
test checks that no key lacks a translation.
"""

from __future__ import annotations

from collections.abc import Mapping
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

TRANSLATIONS: dict[str, dict[str, str]] = {
    # --- shared --------------------------------------------------------------------------------
    "language": {"en": "Language", "fr": "Langue"},
    "catalog": {"en": "Catalog", "fr": "Catalogue"},
    "no_catalog": {
        "en": "No catalog is configured for this dashboard.",
        "fr": "Aucun catalogue n'est configuré pour ce tableau de bord.",
    },
    "no_catalog_how": {
        "en": "Make the sample products with `mus-lab demo`, then open the dashboards with "
        "`mus-lab dashboards --catalog demo_output/scenario/catalog/catalog.json` "
        "(or set MUS_LAB_CATALOG).",
        "fr": "Produisez les données d'exemple avec `mus-lab demo`, puis ouvrez les tableaux de "
        "bord avec `mus-lab dashboards --catalog demo_output/scenario/catalog/catalog.json` "
        "(ou définissez MUS_LAB_CATALOG).",
    },
    "no_products": {
        "en": "No {what} products in {catalog} yet.",
        "fr": "Pas encore de produits {what} dans {catalog}.",
    },
    "how_to_make": {
        "en": "Make them with:",
        "fr": "Pour les produire :",
    },
    "or_whole_chain": {
        "en": "or run the whole chain on the sample scenario with `mus-lab demo`.",
        "fr": "ou lancez toute la chaîne sur le scénario d'exemple avec `mus-lab demo`.",
    },
    "catalog_error": {
        "en": "The catalog could not be read: {error}",
        "fr": "Le catalogue n'a pas pu être lu : {error}",
    },
    # --- flood-risk dashboard ------------------------------------------------------------------
    "flood_title": {"en": "Flood risk", "fr": "Risque d'inondation"},
    "flood_subtitle": {
        "en": "Flood risk classes, flooded area by date and per zone, with their uncertainty.",
        "fr": "Classes de risque d'inondation, surfaces inondées par date et par zone, avec "
        "leur incertitude.",
    },
    "flood_what": {"en": "flood-risk", "fr": "de risque d'inondation"},
    "risk_map": {"en": "Flood risk class", "fr": "Classe de risque d'inondation"},
    "likelihood": {"en": "Flood likelihood (%)", "fr": "Probabilité d'inondation (%)"},
    "show_likelihood": {
        "en": "Show the flood likelihood of the chosen date",
        "fr": "Afficher la probabilité d'inondation de la date choisie",
    },
    "date": {"en": "Date", "fr": "Date"},
    "extent_map": {"en": "Flood extent on {date}", "fr": "Étendue de l'inondation le {date}"},
    "extent_legend": {"en": "Water", "fr": "Eau"},
    "extent_dry": {"en": "dry", "fr": "sec"},
    "extent_flood": {"en": "flooded", "fr": "inondé"},
    "extent_permanent": {"en": "permanent water", "fr": "eau permanente"},
    "zone_table": {
        "en": "Flooded and at-risk area per zone and land-cover class",
        "fr": "Surfaces inondées et à risque par zone et classe d'occupation du sol",
    },
    "col_zone": {"en": "Zone", "fr": "Zone"},
    "col_class": {"en": "Land cover", "fr": "Occupation du sol"},
    "col_flooded": {"en": "Flooded (ha)", "fr": "Inondé (ha)"},
    "col_range": {"en": "Uncertainty range (ha)", "fr": "Intervalle d'incertitude (ha)"},
    "col_at_risk": {"en": "At risk (ha)", "fr": "À risque (ha)"},
    "flood_summary": {
        "en": "In total {flooded:,.0f} ha flooded (between {low:,.0f} and {high:,.0f} ha) and "
        "{at_risk:,.0f} ha at risk, over {n_zones} zone(s).",
        "fr": "Au total {flooded:,.0f} ha inondés (entre {low:,.0f} et {high:,.0f} ha) et "
        "{at_risk:,.0f} ha à risque, sur {n_zones} zone(s).",
    },
    "export_csv": {"en": "Download the table (CSV)", "fr": "Télécharger le tableau (CSV)"},
    "export_png": {"en": "Download the map (PNG)", "fr": "Télécharger la carte (PNG)"},
    "risk_nodata": {
        "en": "White: no risk class (permanent water or no data).",
        "fr": "En blanc : pas de classe de risque (eau permanente ou pas de données).",
    },
    "risk_nodata_short": {
        "en": "no class (permanent water, no data)",
        "fr": "sans classe (eau permanente, pas de données)",
    },
    "no_zones": {
        "en": "The flood-risk product has no zone table.",
        "fr": "Le produit de risque d'inondation n'a pas de tableau par zone.",
    },
    # --- land-cover explorer -------------------------------------------------------------------
    "landcover_title": {"en": "Land-cover explorer", "fr": "Explorateur d'occupation du sol"},
    "landcover_subtitle": {
        "en": "Classifications, their confidence and the fused map side by side; click a pixel "
        "for its time series, class probabilities and belief masses.",
        "fr": "Classifications, leur confiance et la carte fusionnée côte à côte ; cliquez sur "
        "un pixel pour voir ses séries temporelles, probabilités de classe et masses de "
        "croyance.",
    },
    "landcover_what": {"en": "land-cover", "fr": "d'occupation du sol"},
    "layers": {"en": "Layers", "fr": "Couches"},
    "layer_optical_class": {"en": "Optical land cover", "fr": "Occupation du sol optique"},
    "layer_optical_confidence": {"en": "Optical confidence (%)", "fr": "Confiance optique (%)"},
    "layer_radar_class": {"en": "Radar land cover", "fr": "Occupation du sol radar"},
    "layer_radar_confidence": {"en": "Radar confidence (%)", "fr": "Confiance radar (%)"},
    "layer_fused_class": {"en": "Fused land cover", "fr": "Occupation du sol fusionnée"},
    "layer_belief": {"en": "Belief", "fr": "Croyance"},
    "layer_plausibility": {"en": "Plausibility", "fr": "Plausibilité"},
    "layer_conflict": {"en": "Conflict", "fr": "Conflit"},
    "click_a_pixel": {
        "en": "Click a pixel of a map to see its time series, probabilities and masses.",
        "fr": "Cliquez sur un pixel d'une carte pour voir ses séries temporelles, "
        "probabilités et masses.",
    },
    "pixel_at": {
        "en": "Pixel at x={x:.0f} m, y={y:.0f} m",
        "fr": "Pixel à x={x:.0f} m, y={y:.0f} m",
    },
    "optical_series": {"en": "Optical: NDVI", "fr": "Optique : NDVI"},
    "radar_series": {"en": "Radar: backscatter (dB)", "fr": "Radar : rétrodiffusion (dB)"},
    "probabilities": {"en": "Class probabilities", "fr": "Probabilités des classes"},
    "masses": {"en": "Fusion: belief and plausibility", "fr": "Fusion : croyance et plausibilité"},
    "no_series": {
        "en": "No time series at this pixel (no ARD or SAR items in the catalog).",
        "fr": "Pas de série temporelle à ce pixel (pas d'ARD ni d'images SAR dans le catalogue).",
    },
    "mass_belief": {"en": "belief", "fr": "croyance"},
    "mass_plausibility": {"en": "plausibility", "fr": "plausibilité"},
    "mass_conflict": {"en": "conflict", "fr": "conflit"},
    "mass_ignorance": {"en": "ignorance", "fr": "ignorance"},
    "mass_confidence": {"en": "confidence", "fr": "confiance"},
    "class": {"en": "class", "fr": "classe"},
    "value": {"en": "value", "fr": "valeur"},
    "source": {"en": "source", "fr": "source"},
    "undecided": {"en": "undecided", "fr": "indécis"},
    "time": {"en": "date", "fr": "date"},
    "series": {"en": "series", "fr": "série"},
    "probability": {"en": "probability", "fr": "probabilité"},
    "mass": {"en": "mass", "fr": "masse"},
    "source_optical": {"en": "optical", "fr": "optique"},
    "source_radar": {"en": "radar", "fr": "radar"},
    "export_pixel_csv": {
        "en": "Download the pixel's values (CSV)",
        "fr": "Télécharger les valeurs du pixel (CSV)",
    },
    "export_maps_png": {"en": "Download the maps (PNG)", "fr": "Télécharger les cartes (PNG)"},
}

#: Risk classes of the ``flood-risk`` product (``risk_class`` 1-5; 0 is no data).
RISK_CLASSES: dict[int, dict[str, str]] = {
    1: {"en": "very low", "fr": "très faible"},
    2: {"en": "low", "fr": "faible"},
    3: {"en": "moderate", "fr": "modéré"},
    4: {"en": "high", "fr": "élevé"},
    5: {"en": "very high", "fr": "très élevé"},
}

#: Land-cover class names by English name (the scenario legend and the products' class_name).
LANDCOVER_NAMES: dict[str, dict[str, str]] = {
    "no data": {"en": "no data", "fr": "pas de données"},
    "crops": {"en": "crops", "fr": "cultures"},
    "grassland": {"en": "grassland", "fr": "prairies"},
    "forest": {"en": "forest", "fr": "forêt"},
    "water": {"en": "water", "fr": "eau"},
    "wetland": {"en": "wetland", "fr": "milieux humides"},
    "urban": {"en": "urban", "fr": "zones bâties"},
    "bare": {"en": "bare", "fr": "sol nu"},
}


def translate(key: str, language: str = "en", /, **values: Any) -> str:
    """The label ``key`` in ``language`` (``"en"`` or ``"fr"``), formatted with ``values``.

    An unknown language falls back to English; an unknown key raises ``KeyError`` (a typo in
    a view must fail its test, not show a blank).

    Example
    -------
    >>> translate("no_products", "fr", what="de risque d'inondation", catalog="cat.json")
    "Pas encore de produits de risque d'inondation dans cat.json."
    """
    entry = TRANSLATIONS[key]
    text = entry.get(language, entry["en"])
    return text.format(**values) if values else text


def risk_name(code: int, language: str = "en") -> str:
    """Name of a risk class (1 very low ... 5 very high)."""
    entry = RISK_CLASSES.get(int(code))
    return entry.get(language, entry["en"]) if entry else str(code)


def class_name(
    name: str, language: str = "en", names: Mapping[str, Mapping[str, str]] = LANDCOVER_NAMES
) -> str:
    """A land-cover class name (English, as in the legend) in ``language``; unknown names pass."""
    entry = names.get(str(name).lower())
    return entry.get(language, entry["en"]) if entry else str(name)
