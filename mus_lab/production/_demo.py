"""The main job run by ``make demo``: sample scenario -> search -> multi-sensor cube -> products,
then the curated notebooks of :data:`~mus_lab.production.DEMO_CHAIN` run in batch on the
scenario's catalog.

Each stage is a call into the package; this module only chains them and reports.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mus_lab import ard, catalog, compute, cube, sample
from mus_lab._io import write_cog, write_json
from mus_lab.production._chain import chain_paths
from mus_lab.production._run import ChainReport, run_chain

__all__ = ["DemoReport", "run_demo"]

#: Sen2Cor SCL classes treated as invalid in the quick composite (METHODS.md section 1).
SCL_INVALID = (0, 1, 3, 8, 9, 10)

#: Scene size of the quick demo (``mus-lab demo`` / ``make demo``), in 10 m pixels.
QUICK_SIZE = 256
#: What the quick demo passes to the notebooks so that it ends within minutes on two cores
#: (notebook 03 alone took 400 s at 512 px with its defaults); ``quick=False`` (``mus-lab
#: demo --full``) runs the notebooks' own defaults.
QUICK_PARAMETERS: dict[str, dict[str, Any]] = {
    "03_landcover": {
        "sensor_sets": ["optical", "radar"],  # default also "stacked"; notebook 04 fuses these two
        "n_trees": 30,  # default 100
        "tempcnn_epochs": 5,  # default 15
        "seeds": [0, 1],  # default [0, 1, 2]
    },
    "05_flood_risk": {"datetime": "2022-03-01/2022-07-31"},  # the flood season; default all dates
}


def quick_note(size: int) -> str:
    """What the quick demo reduces, and how to get the full run (printed by the demo).

    Parameters
    ----------
    size
        The demo's scene width/height in pixels.

    Returns
    -------
    str
        One paragraph.

    Example
    -------
    >>> "mus-lab demo --full" in quick_note(256)
    True
    """
    reduced = "; ".join(
        f"{stem}: " + ", ".join(f"{k}={v!r}" for k, v in params.items())
        for stem, params in QUICK_PARAMETERS.items()
    )
    return (
        f"Quick demo: a {size} x {size} px scene and lighter notebook settings ({reduced}). "
        "Full run (the notebooks' defaults, a 512 px scene, about 15 min on 2 cores): "
        "`mus-lab demo --full --size 512` or `make demo DEMO_FULL=1 DEMO_SIZE=512`."
    )


@dataclass
class DemoReport:
    """What the demo made and where.

    Attributes
    ----------
    root, scenario
        The demo's folder and the sample scenario in it.
    products, figures
        Quick-look products and ARD collections by name; numbers the demo measured.
    cluster
        The Dask cluster used, described.
    chain
        The notebooks run in batch (``None`` when none ran).
    catalog
        The scenario's ``catalog.json`` (see :attr:`catalog_json`).
    note
        What the quick demo reduced and how to get the full run (empty for a full run).
    """

    root: Path
    scenario: Path
    products: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    cluster: str = ""
    chain: ChainReport | None = None
    catalog: Path | None = None
    note: str = ""

    @property
    def catalog_json(self) -> Path:
        """The scenario's ``catalog.json``, where the notebooks also write their products."""
        return (
            self.catalog if self.catalog is not None else self.scenario / "catalog" / "catalog.json"
        )

    def summary(self) -> str:
        """Where everything is, what was reduced, how each notebook went and what to do next.

        Returns
        -------
        str
            The lines printed at the end of ``mus-lab demo``.
        """
        word = "finished" if self.chain is None or self.chain.ok else "finished WITH ERRORS"
        lines = [f"mus_lab demo {word}. Everything is under {self.root.resolve()}", ""]
        if self.note:
            lines += [f"  {self.note}", ""]
        lines.append(f"  sample scenario (STAC catalog + COGs): {self.scenario.resolve()}")
        lines.append(
            f"  catalog with the products written by the notebooks: {self.catalog_json.resolve()}"
        )
        lines.append(f"  Dask cluster used: {self.cluster}")
        lines.append("  products:")
        lines += [f"    {name:<22} {path.resolve()}" for name, path in self.products.items()]
        lines.append("  figures:")
        lines += [f"    {name:<22} {value:.4g}" for name, value in self.figures.items()]
        if self.chain is not None:
            lines += [
                "",
                f"  notebooks run in batch (executed .ipynb, .html, .records.json) in {self.chain.out.resolve()}:",
            ]
            lines += ["    " + line for line in self.chain.table().splitlines()]
            lines += [f"  summary: {self.chain.summary_json}"]
            lines += [
                "  the .html copies and executed .ipynb show static pictures of the figures "
                "(offline);",
                "  rerun a notebook in JupyterLab for interactive ones. What the kernels printed "
                "outside the cells: *.kernel.log",
            ]
        lines += [
            "",
            "  open the dashboards:  make dashboards",
            f"    (or: mus-lab dashboards --catalog {self.catalog_json.resolve()})",
            "  explore in JupyterLab:  make lab",
        ]
        return "\n".join(lines)


def _db(x: xr.DataArray) -> xr.DataArray:
    return xr.DataArray(10.0 * np.log10(x.where(x > 0)))


def s2_clear_ndvi_median(s2: xr.Dataset) -> xr.DataArray:
    """Median NDVI of the SCL-clear observations (a quick look, not the ARD chain).

    Parameters
    ----------
    s2
        Sentinel-2 L2A cube with ``red``, ``nir`` and ``scl`` (DN, as loaded).

    Returns
    -------
    xarray.DataArray
        ``ndvi_median`` (float32, lazy when ``s2`` is).

    Example
    -------
    >>> from mus_lab import catalog, cube
    >>> items = catalog.search(tiny.catalog_path, collections="sentinel-2-l2a")
    >>> s2 = cube.load(items, ("red", "nir", "scl"))
    >>> ndvi = s2_clear_ndvi_median(s2)
    >>> ndvi.dims, bool(-1 <= float(ndvi.mean()) <= 1)
    (('y', 'x'), True)
    """
    clear = ~s2.scl.isin(SCL_INVALID)
    red_scale, red_offset = cube.scaling(s2, "red")
    nir_scale, nir_offset = cube.scaling(s2, "nir")
    red = (s2.red * red_scale + red_offset).where(clear & (s2.red > 0))
    nir = (s2.nir * nir_scale + nir_offset).where(clear & (s2.nir > 0))
    return ndvi_median(red, nir)


def ndvi_median(red: xr.DataArray, nir: xr.DataArray) -> xr.DataArray:
    """Median over ``time`` of the NDVI of reflectances already masked (NaN: not clear).

    Parameters
    ----------
    red, nir
        Reflectance ``(time, y, x)``.

    Returns
    -------
    xarray.DataArray
        ``ndvi_median`` (float32).
    """
    ndvi = (nir - red) / (nir + red)
    return ndvi.median("time", skipna=True).astype("float32").rename("ndvi_median")


def run_demo(
    out: str | Path,
    *,
    size: int = QUICK_SIZE,
    quick: bool = True,
    seed: int = 42,
    n_workers: int | None = None,
    log: Callable[[str], None] = print,
    notebooks: Sequence[str | os.PathLike[str]] | None = None,
    progress: bool = False,
    per_notebook: Mapping[str, Mapping[str, Any]] | None = None,
) -> DemoReport:
    """Build the sample scenario, run the main job on a local Dask cluster, then the notebooks.

    Parameters
    ----------
    out
        Folder for the scenario (``scenario/``), the quick-look products (``products/``)
        and the executed notebooks (``notebooks/``).
    size, seed
        Scenario width/height in 10 m pixels, random seed.
    quick
        Pass :data:`QUICK_PARAMETERS` to the notebooks (fewer trees, epochs and seeds, no
        stacked map), so that the demo ends within minutes; False runs their defaults.
    n_workers
        Local Dask workers (default: one per core).
    log
        Called with each progress line.
    notebooks
        The notebooks to run on the scenario's catalog; default
        :data:`~mus_lab.production.DEMO_CHAIN`, ``()`` for none.
    progress
        Show papermill's progress bar for each notebook.
    per_notebook
        Extra parameters per notebook (by stem), e.g. ``{"02_ard": {"speckle": "lee"}}``;
        they win over :data:`QUICK_PARAMETERS`.

    Returns
    -------
    DemoReport
        ``report.chain.ok`` is False when a notebook failed (the demo goes on to its summary).

    Raises
    ------
    NotebookNotFoundError
        A notebook of the chain is missing (checked before the scenario is generated).
    NotebookParameterError
        ``per_notebook`` names a notebook outside the chain or a parameter it does not have
        (checked before the first notebook runs).
    """
    root = Path(out)
    t0 = time.perf_counter()
    chain = chain_paths() if notebooks is None else [Path(n) for n in notebooks]
    steps = 6 if chain else 5
    stems = {p.stem for p in chain}
    params: dict[str, dict[str, Any]] = {
        stem: dict(values)
        for stem, values in (QUICK_PARAMETERS if quick else {}).items()
        if stem in stems
    }
    for stem, values in (per_notebook or {}).items():
        params.setdefault(Path(stem).stem, {}).update(values)
    note = quick_note(size) if quick and chain else ""
    if note:
        log(note)
    log(f"[1/{steps}] Generating the sample scenario ({size} x {size} px at 10 m) ...")
    scenario = sample.generate(
        root / "scenario", size=size, seed=seed, overwrite=True, progress=True
    )
    report = DemoReport(root=root, scenario=scenario.root, catalog=scenario.catalog_path, note=note)
    products = root / "products"
    with compute.cluster(n_workers=n_workers) as client:
        report.cluster = str(compute.describe(client))
        log(f"[2/{steps}] {report.cluster}")
        log(
            f"[3/{steps}] Searching the local catalog and loading S2, S1 and RCM on the S2 10 m grid ..."
        )
        found = {
            "s2": catalog.search(scenario.catalog_path, collections="sentinel-2-l2a", max_cloud=80),
            "s1": catalog.search(scenario.catalog_path, collections="sentinel-1-grd"),
            "rcm": catalog.search(scenario.catalog_path, collections="rcm-grd"),
        }
        for name, result in found.items():
            log(f"      {name}: {len(result)} items")
        cubes = cube.load_sensors(
            found,
            bands={"s2": ("red", "nir", "scl"), "s1": ("vv", "vh"), "rcm": ("vv", "vh")},
            chunks=512,
        )
        grid = cube.check_same_grid(*cubes.values(), names=list(cubes))
        crs = f"EPSG:{grid.crs.epsg}" if grid.crs is not None else "?"
        log(
            f"      common grid: {crs} {grid.shape.y} x {grid.shape.x} px at {abs(grid.resolution.x):g} m"
        )
        log(f"[4/{steps}] Computing and writing products (streamed by dask chunks) ...")
        ndvi = s2_clear_ndvi_median(cubes["s2"])
        report.products["s2_ndvi_median"] = write_cog(
            ndvi, products / "s2_ndvi_median.tif", nodata=np.nan, overview_resampling="average"
        )
        for sensor in ("s1", "rcm"):
            vv_db = _db(cubes[sensor].vv.mean("time", skipna=True)).astype("float32")
            report.products[f"{sensor}_vv_mean_db"] = write_cog(
                vv_db,
                products / f"{sensor}_vv_mean_db.tif",
                nodata=np.nan,
                overview_resampling="average",
            )
        log(
            f"[5/{steps}] Preparing ARD (S2 masked reflectance + quality, S1 refined Lee) into the catalog ..."
        )
        for coll, n in write_demo_ard(scenario.catalog_path, found).items():
            report.products[coll] = _catalog_dir(scenario.catalog_path) / coll
            report.figures[f"{coll}_items"] = float(n)
    report.figures["s2_dates"] = float(cubes["s2"].sizes["time"])
    report.figures["s1_dates"] = float(cubes["s1"].sizes["time"])
    report.figures["rcm_dates"] = float(cubes["rcm"].sizes["time"])
    report.products["quicklook"] = _quicklook(report.products, products / "quicklook.png")
    if chain:
        log(f"[6/{steps}] Running the notebooks {', '.join(p.name for p in chain)} in batch ...")
        report.chain = run_chain(
            chain,
            root / "notebooks",
            parameters={"catalog": str(scenario.catalog_path.resolve())},
            per_notebook=params,
            cwd=root,
            progress=progress,
            log=lambda line: log(f"      {line}"),
        )
    report.figures["seconds"] = time.perf_counter() - t0
    write_json(
        {
            "products": report.products,
            "figures": report.figures,
            "cluster": report.cluster,
            "chain": report.chain.to_dict() if report.chain is not None else None,
        },
        root / "demo_report.json",
    )
    return report


def _catalog_dir(path: str | Path) -> Path:
    p = Path(path)
    return p.parent if p.suffix == ".json" else p


def write_demo_ard(catalog_path: Path, found: dict[str, catalog.SearchResult]) -> dict[str, int]:
    """S2 L2A and S1 GRD made analysis-ready on the S2 10 m grid and added to the catalog.

    Parameters
    ----------
    catalog_path
        The local catalog to write into (``s2-l2a-ard``, ``s1-grd-ard``, replaced).
    found
        Search results by sensor: ``"s2"`` and ``"s1"``.

    Returns
    -------
    dict of str to int
        Items written per collection.
    """
    s2 = ard.prepare_s2(found["s2"], chunks={"time": -1, "x": 512, "y": 512})
    s1 = ard.prepare_s1(found["s1"], geobox=cube.geobox_of(s2), speckle="refined_lee")
    written = {}
    for coll, ds, items in (
        (
            "s2-l2a-ard",
            s2[["red", "green", "blue", "nir", "swir16", "quality", "valid"]],
            found["s2"],
        ),
        ("s1-grd-ard", s1, found["s1"]),
    ):
        ard.write(ds, catalog_path, coll, sources=list(items), overwrite=True)
        written[coll] = len(catalog.search(catalog_path, collections=coll))
    return written


def _quicklook(products: dict[str, Path], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio

    from mus_lab._io import atomic_path

    panels = [
        ("s2_ndvi_median", "S2 median NDVI (clear)", "RdYlGn", (-0.2, 0.9), "NDVI"),
        ("s1_vv_mean_db", "S1 mean VV", "gray", (-25, 0), "dB"),
        ("rcm_vv_mean_db", "RCM mean VV (reprojected)", "gray", (-25, 0), "dB"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), constrained_layout=True)
    for ax, (key, title, cmap, (vmin, vmax), unit) in zip(axes, panels, strict=True):
        with rasterio.open(products[key]) as src:
            factor = max(1, max(src.shape) // 1024)
            arr = src.read(1, out_shape=(src.height // factor, src.width // factor))
        im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, shrink=0.8, label=unit)
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return path
