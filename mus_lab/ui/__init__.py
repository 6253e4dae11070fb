"""Dashboard state and views: the flood-risk dashboard (Voila) and the land-cover explorer (Panel).

State lives in GUI-free ``param.Parameterized`` models (:class:`FloodRiskState`,
:class:`LandcoverState`) that find the products with ``mus_lab.catalog.search`` and that tests
drive without a browser; the views (:class:`FloodRiskDashboard`, :class:`LandcoverExplorer`)
are thin and the apps in ``apps/`` are a few lines. Panel is imported only when a view is
built, so a notebook that only uses the state stays light. Labels exist in English and French
(:func:`translate`). With no product in the catalog, each dashboard says how to make them.

Example
-------
>>> from mus_lab.ui import FloodRiskState
>>> FloodRiskState(catalog="").ready
False
"""

from mus_lab.ui._flood_state import RISK_COLOURS, ZONE_COLUMNS, FloodRiskState
from mus_lab.ui._flood_view import FloodRiskDashboard
from mus_lab.ui._i18n import (
    LANDCOVER_NAMES,
    LANGUAGES,
    RISK_CLASSES,
    TRANSLATIONS,
    class_name,
    risk_name,
    translate,
)
from mus_lab.ui._landcover_state import LAYERS, LEGEND, LEGEND_COLOURS, LandcoverState, Layer
from mus_lab.ui._landcover_view import LandcoverExplorer
from mus_lab.ui._offline import offline_extension
from mus_lab.ui._products import (
    PRODUCT_NOTEBOOKS,
    Products,
    find_products,
    how_to_make,
    missing_message,
)
from mus_lab.ui._rasters import read_for_display, sample_pixel
from mus_lab.ui._serve import (
    APPS,
    AppSpec,
    DashboardServer,
    app_command,
    free_port,
    hub_server_config,
    serve,
    write_hub_server_config,
)

__all__ = [
    "APPS",
    "LANDCOVER_NAMES",
    "LANGUAGES",
    "LAYERS",
    "LEGEND",
    "LEGEND_COLOURS",
    "PRODUCT_NOTEBOOKS",
    "RISK_CLASSES",
    "RISK_COLOURS",
    "TRANSLATIONS",
    "ZONE_COLUMNS",
    "AppSpec",
    "DashboardServer",
    "FloodRiskDashboard",
    "FloodRiskState",
    "LandcoverExplorer",
    "LandcoverState",
    "Layer",
    "Products",
    "app_command",
    "class_name",
    "find_products",
    "free_port",
    "how_to_make",
    "hub_server_config",
    "missing_message",
    "offline_extension",
    "read_for_display",
    "risk_name",
    "sample_pixel",
    "serve",
    "translate",
    "write_hub_server_config",
]
