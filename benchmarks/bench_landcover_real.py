"""Land-cover accuracy on real data: RF, TempCNN, L-TAE and their soft-voting ensemble.

eo-learn's Slovenian test patch (``eolearn_testeopatch_slovenia/TestEOPatch`` under the real
data folder, setting ``real_data`` / ``MUS_LAB_REAL_DATA``): 68 real Sentinel-2 NDVI dates with
cloud masks, gap-filled (IOTA² rule) onto a 20-day grid (45 features), 84 reference polygons
of 5 classes (forest 76 % of the pixels). For every seed, ``classify.train`` splits the
polygons 50/50 per class (``split_by_polygon``), trains each model on one half and measures
OA, kappa and macro-F1 on the other half; the ensemble is the mean of the probabilities of the
RF, TempCNN and L-TAE of that seed (``classify.ensemble``), measured on the same polygons.
Mean and standard deviation over the seeds, the load average and per-class F1 go to the JSON
report.

Configurations (``--models``): ``rf`` (100 trees, IOTA²), ``tempcnn_before`` (the real-data
test's settings before issue 16: 10 epochs, <= 400 px per class; here with augmentation,
class-damped sampling and the schedule off; with the checkout from before issue 16 on
``PYTHONPATH``, the code as it was), ``tempcnn`` and ``ltae`` (the current defaults); ``ensemble`` needs
``rf``, ``tempcnn`` and ``ltae``. ``--set KEY=VALUE`` overrides a parameter of the networks.

Usage: ``nice -n 10 python benchmarks/bench_landcover_real.py [--seeds 0 1 2 3 4]
[--models rf tempcnn ltae ensemble] [--set noise=0.1] [--workdir DIR]``
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import arg_parser, machine, print_table, timed, write_report

PATCH = "eolearn_testeopatch_slovenia/TestEOPatch"
CLASSES = (1, 2, 3, 4, 8)
CONFIGS: dict[str, tuple[str, dict[str, Any], int | None]] = {
    "rf": ("rf", {"n_estimators": 100}, None),
    "tempcnn_before": ("tempcnn", {"epochs": 10, "patience": 5}, 400),
    "tempcnn": ("tempcnn", {}, None),
    "ltae": ("ltae", {}, None),
}
#: What switches the training of issue 16 off (added only where the TempCNN has the options:
#: run with the checkout from before it on PYTHONPATH to measure the code as it was).
BEFORE_OFF = {"sampling_power": 0.0, "noise": 0.0, "shift": 0, "lr_schedule": "constant"}


def patch_features(root: Path):  # type: ignore[no-untyped-def]
    """The patch's gap-filled NDVI feature cube and its reference polygons: the test's recipe,
    imported from ``tests/classify/test_realdata.py`` so that both read the patch alike."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.classify.test_realdata import _patch

    return _patch(root)


def _scores(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "oa": report["overall_accuracy"],
        "kappa": report["kappa"],
        "macro_f1": report["macro_f1"],
        "f1": {c: round(row.get("f1", np.nan), 3) for c, row in report["per_class"].items()},
    }


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--models", nargs="+", default=["rf", "tempcnn", "ltae", "ensemble"], metavar="NAME"
    )
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data", type=Path, default=None, help="real data folder")
    parser.add_argument("--out", default="bench_landcover_real.json")
    args = parser.parse_args()
    from mus_lab import classify
    from mus_lab._settings import get_settings

    overrides = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    root = (args.data or get_settings().real_data) / PATCH
    load_start = machine()
    feats, polygons = patch_features(root)
    smp = classify.extract_samples(
        feats, polygons, label="LULC_ID", name_field="LULC_NAME", id_field="index", classes=CLASSES
    )
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        _, val_set = classify.split_by_polygon(smp, seed=seed)
        trained = {}
        for name in args.models:
            if name == "ensemble":
                continue
            kind, params, cap = CONFIGS[name]
            params = {**params, **(overrides if kind != "rf" else {})}
            if name == "tempcnn_before":
                accepted = inspect.signature(classify.classifier_class(kind)).parameters
                params.update({k: v for k, v in BEFORE_OFF.items() if k in accepted})
            seconds, model = timed(
                lambda k=kind, p=params, c=cap, s=seed: classify.train(
                    smp, k, params=p, seed=s, max_per_class=c
                )
            )
            trained[name] = model
            rep = model.metadata.report
            rows.append(
                {
                    "model": name,
                    "seed": seed,
                    **_scores(rep["validation"]),
                    "epochs": rep.get("epochs_run"),
                    "fit_s": round(seconds, 1),
                }
            )
            print(
                f"seed {seed} {name:15s} OA {rows[-1]['oa']:.3f} kappa {rows[-1]['kappa']:.3f} "
                f"macro-F1 {rows[-1]['macro_f1']:.3f} epochs {rows[-1]['epochs']} "
                f"{seconds:.0f} s f1 {rows[-1]['f1']}",
                flush=True,
            )
        if "ensemble" in args.models:
            members = [trained[m] for m in ("rf", "tempcnn", "ltae") if m in trained]
            ens = classify.ensemble(members, validation=val_set)
            rows.append(
                {"model": "ensemble", "seed": seed, **_scores(ens.metadata.report["validation"])}
            )
            print(
                f"seed {seed} {'ensemble':15s} OA {rows[-1]['oa']:.3f} "
                f"kappa {rows[-1]['kappa']:.3f} macro-F1 {rows[-1]['macro_f1']:.3f} "
                f"f1 {rows[-1]['f1']}",
                flush=True,
            )
    df = pd.DataFrame(rows)
    stats = df.groupby("model", sort=False)[["oa", "kappa", "macro_f1"]].agg(["mean", "std"])
    result = {
        "data": PATCH,
        "samples": len(smp),
        "seeds": list(args.seeds),
        "overrides": overrides,
        "machine_start": load_start,
        "machine_end": machine(),
        "summary": {
            m: {f"{k}_{s}": round(float(stats.loc[m, (k, s)]), 4) for k, s in stats.columns}
            for m in stats.index
        },
        "runs": rows,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print_table(
        [("model", "<16"), ("OA", ">16"), ("kappa", ">16"), ("macro-F1", ">16")],
        [
            (
                m,
                *(
                    f"{stats.loc[m, (k, 'mean')]:.3f} ± {stats.loc[m, (k, 'std')]:.3f}"
                    for k in ("oa", "kappa", "macro_f1")
                ),
            )
            for m in stats.index
        ],
    )
    write_report(result, args.workdir / args.out, echo=False)
    print(f"load average {load_start['load_average']} -> {result['machine_end']['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
