"""Land-cover explorer: `make dashboards`, or `mus-lab dashboards --only landcover_explorer`.

Shows the catalog named by MUS_LAB_CATALOG (see mus_lab.ui.LandcoverState); with MUS_LAB_TILES
set, the maps come from that tile service over a true-colour Sentinel-2 background.
"""

from mus_lab import get_settings, ui

ui.offline_extension()
settings = get_settings()
state = ui.LandcoverState(catalog=settings.catalog or "", tiles=settings.tiles or "")
ui.LandcoverExplorer(state).servable()
