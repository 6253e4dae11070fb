"""Land-cover explorer: `make dashboards`, or `mus-lab dashboards --only landcover_explorer`.

Shows the catalog named by MUS_LAB_CATALOG (see mus_lab.ui.LandcoverState).
"""

from mus_lab import get_settings, ui

ui.offline_extension()
ui.LandcoverExplorer(ui.LandcoverState(catalog=get_settings().catalog or "")).servable()
