"""Lee filter throughput: mus_lab's numba Lee against a plain scipy ``uniform_filter`` Lee.

Both use a 7 x 7 window and ENL 4.4 on the same 4096 x 4096 float32 image; the reference
is the textbook vectorised Lee (not NaN-aware). Prints one JSON object with Mpix/s of
both and their ratio (> 1: mus_lab faster).

Run: ``PYTHONPATH=. python benchmarks/bench_speckle.py [--size 4096] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from _common import best_of
from scipy import ndimage

from mus_lab.ard.sar import speckle_filter


def reference_lee(img: np.ndarray, window: int = 7, enl: float = 4.4) -> np.ndarray:
    """Lee filter from ``scipy.ndimage.uniform_filter`` local moments (float64)."""
    x = img.astype(np.float64)
    m = ndimage.uniform_filter(x, window)
    v = ndimage.uniform_filter(x * x, window) - m * m
    cu2 = 1.0 / enl
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.clip((v - m * m * cu2) / (v * (1.0 + cu2)), 0.0, 1.0)
    k = np.where(v > 0, k, 0.0)
    return (m + k * (x - m)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    img = (rng.gamma(4.4, 1 / 4.4, size=(args.size, args.size)) * 0.05).astype(np.float32)
    speckle_filter(img[:64, :64], "lee")  # compile outside the timing
    t_ref = best_of(lambda: reference_lee(img), args.repeat)[0]
    t_ours = best_of(lambda: speckle_filter(img, "lee"), args.repeat)[0]
    ours, ref = speckle_filter(img, "lee"), reference_lee(img)
    inner = (slice(3, -3), slice(3, -3))  # edges differ: reflect vs missing
    mpix = img.size / 1e6
    print(
        json.dumps(
            {
                "image": list(img.shape),
                "window": 7,
                "cpus": os.cpu_count(),
                "mus_lab_lee_mpix_s": round(mpix / t_ours, 2),
                "scipy_reference_lee_mpix_s": round(mpix / t_ref, 2),
                "ratio_mus_lab_over_reference": round(t_ref / t_ours, 3),
                "max_abs_diff_interior": float(np.max(np.abs(ours[inner] - ref[inner]))),
            }
        )
    )


if __name__ == "__main__":
    main()
