"""STAND-IN for ESA's Sen2Cor ``L2A_Process`` (tests only: it does no atmospheric correction).

Run as a program (``python fake_sen2cor.py <L1C.SAFE> --output_dir DIR [--resolution R]
[--GIP_L2A FILE]``), it checks its arguments the way Sen2Cor's command line takes them and writes
the real L2A layout: the real ``MTD_MSIL2A.xml`` / ``MTD_TL.xml`` of a baseline 04.00 product
(from the real-data folder named by ``MUS_LAB_REAL_DATA``) with small JPEG2000 rasters.
An input whose name holds ``CORRUPT`` makes it fail the way Sen2Cor reports a bad product.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="L2A_Process (stand-in)")
    parser.add_argument("input_dir")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--resolution", type=int, choices=(10, 20, 60))
    parser.add_argument("--GIP_L2A")
    args = parser.parse_args(argv)
    l1c = Path(args.input_dir)
    print("Sen2Cor stand-in (tests), started.")
    print(f"Processing {l1c.name}")
    if not (l1c / "MTD_MSIL1C.xml").is_file():
        print(f"ERROR: {l1c} is not a Level-1C product (no MTD_MSIL1C.xml)", file=sys.stderr)
        return 2
    if args.GIP_L2A is not None:
        root = ET.parse(args.GIP_L2A).getroot()
        if root.tag != "Level-2A_Ground_Image_Processing_Parameter":
            print(f"ERROR: {args.GIP_L2A} is not an L2A_GIPP file", file=sys.stderr)
            return 2
    if "CORRUPT" in l1c.name:
        for step in ("L2A_Tables: reading band B02", "L2A_Tables: reading band B03"):
            print(step)
        print("ERROR: L2A_Tables: cannot decode granule image B04 (JP2 stream truncated)")
        print("Progress[%]: 12.00 : Application terminated with at least one error.")
        return 1
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from mus_lab import get_settings
    from tests.ard._s2_products import N0400, make_safe

    product, _, _ = make_safe(get_settings().real_data, Path(args.output_dir), N0400, zipped=False)
    print(f"Product {product.name} written.")
    print("Progress[%]: 100.00 : Application terminated successfully.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
