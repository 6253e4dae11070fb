"""Write the Jupyter server settings of the hub image (called by binder/postBuild).

Usage: ``python binder/jupyter_config.py [CONFIG_DIR]`` (default ``<sys.prefix>/etc/jupyter``).
It merges ``mus_lab.ui.hub_server_config()`` into ``CONFIG_DIR/jupyter_server_config.json``:
Voila's server extension gets the offline ``mus_lab`` template and the extension denylist, and
the page configuration loses its MathJax CDN address. The browser test
``tests/ui/test_hub_routes.py`` runs this same script.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mus_lab.ui import write_hub_server_config

if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(sys.prefix) / "etc" / "jupyter"
    print(f"wrote {write_hub_server_config(folder)}")
