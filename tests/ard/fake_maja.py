"""STAND-IN for CNES's ``maja`` (tests only: it does no atmospheric correction).

Run as a program (``python fake_maja.py -i INPUT -o OUTPUT -m MODE -ucs CONF -w WORK --TileId T``),
it checks its arguments the way MAJA's command line takes them (the input folder must hold the
L1C ``.SAFE``, GIPP files and a DTM) and writes the THEIA L2A folder layout with small GeoTIFFs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="maja (stand-in)")
    parser.add_argument("-i", "--input", required=True)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("-m", "--mode", choices=("L2INIT", "L2NOMINAL", "L2BACKWARD"))
    parser.add_argument("-ucs", "--conf", required=True)
    parser.add_argument("-w", "--workdir", required=True)
    parser.add_argument("--TileId", required=True)
    args = parser.parse_args(argv)
    inputs = [p.name for p in Path(args.input).iterdir()]
    print(f"MAJA stand-in (tests): {args.mode} on tile {args.TileId}, inputs {sorted(inputs)}")
    missing = [
        what
        for what, ok in (
            ("an L1C .SAFE", any(n.endswith(".SAFE") for n in inputs)),
            ("GIPP files", any("GIP_" in n for n in inputs)),
            ("a DTM", any("AUX_REFDE2" in n for n in inputs)),
        )
        if not ok
    ]
    if missing or not Path(args.conf).is_dir():
        print(f"ERROR: the input folder lacks {missing} or the user configuration is missing")
        return 1
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.ard._s2_products import make_maja

    product, _ = make_maja(Path(args.output))
    print(f"Product {product.name} written.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
