"""Settings of flood mapping, in one frozen dataclass shared by the API, the CLI and provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from mus_lab.errors import FloodInputError

__all__ = ["ALL_METHODS", "METHODS", "MappingOptions", "Method"]

Method = Literal["threshold", "change", "region", "self_trained"]
#: The default SAR methods, in the order of the ``source`` dimension of the evidence.
METHODS: tuple[Method, ...] = ("threshold", "change", "region")
#: Every SAR method: the defaults and the opt-in per-scene self-trained classifier.
ALL_METHODS: tuple[Method, ...] = (*METHODS, "self_trained")


@dataclass(frozen=True)
class MappingOptions:
    """How SAR (and optical) evidence of water is drawn and combined.

    Attributes
    ----------
    methods
        SAR methods to run: ``"threshold"`` (tiled bimodal threshold), ``"change"``
        (UN-SPIDER change detection against a pre-event reference of the same orbit),
        ``"region"`` (region growing from confident seeds), and the opt-in
        ``"self_trained"``: a per-scene classifier trained on the pixels the other
        methods agree on with high confidence (:mod:`mus_lab.flood._selftrain`).
    threshold_method
        ``"em"`` (HydroSAR's expectation-maximisation, default) or ``"otsu"``.
    thresholds
        Fixed thresholds in dB per polarisation (``{"vh": -22.0}``) instead of tiles.
    tile
        Tile side in pixels; ``None``: 256, or less so that 4 x 4 tiles fit the scene.
    n_tiles, min_valid, ashman_min, min_share, bin_db
        Tile selection (:mod:`mus_lab.flood._tiles`): tiles thresholded, valid share,
        Ashman's D, smaller-mode share, histogram bin (dB).
    bc_min
        A tile is trusted only if its bimodality coefficient exceeds this too (5/9, the
        uniform distribution's: SAS Institute 1990, Pfister et al. 2013); tiles bimodal
        in the other polarisation as well rank first (VV and VH jointly).
    water_max_db
        The dark mode of a selected tile must be darker than this (dB) per polarisation:
        calm open water, not a dark field (-18 dB VV, -24 dB VH; Sen1Floods11's per-event
        VH thresholds, median -21.6 dB, sit above the water mode).
    max_threshold_db
        Thresholds are capped here (HydroSAR's ``max_vv_threshold`` -15.5 dB and
        ``max_vh_threshold`` -23 dB).
    softness_db
        Width (dB) of the logistic turning the distance to the threshold into a
        likelihood: 1 dB darker than the threshold gives 0.73, 3 dB gives 0.95.
    change_ratio, change_softness
        UN-SPIDER: water appears where after/before > 1.25 on focal-mean dB values.
    smoothing_radius_m
        Radius of the change detection's focal mean (UN-SPIDER: 50 m).
    min_group_px
        Change-detection groups smaller than this (8-connected) are dropped (UN-SPIDER: 8).
    reference_dates
        Fewest dates of one orbit that make a per-orbit median reference.
    seed_likelihood, grow_tolerance_db, grow_depth
        Region growing (hysteresis): seeds are pixels of threshold likelihood >= 0.95
        (3 dB below the threshold); they grow into connected pixels up to
        ``grow_tolerance_db`` (0.5 dB) above the threshold, within
        ``grow_depth`` pixels of a chunk's edge (dask halo).
    hand_max_m, hand_fraction
        Exclusion above this HAND (m) (GFM and HydroSAR: 15 m); HydroSAR tile candidates
        need this share of the tile below it.
    slope_max_deg
        Exclusion above this slope (degrees): 15°, where HydroSAR's slope membership
        reaches zero.
    change_slope_max_deg
        Change detection ignores steeper pixels (UN-SPIDER's Earth Engine recipe: slope
        < 5°, ``ee.Terrain`` degrees), when a slope is given.
    reference_frequency
        Water in at least this share of valid dates is reference (seasonal or
        permanent) water: UN-SPIDER's 10 months out of 12.
    lookalike_frequency
        Dark in at least this share of valid dates but not reference water: a
        low-backscatter look-alike (sand, tarmac, radar shadow), excluded.
    optical_index, optical_max_days, optical_softness
        Optical evidence: MNDWI (or NDWI) of a cloud-free Sentinel-2 date at most
        ``optical_max_days`` from the SAR date; likelihood = logistic(index / softness).
    sar_reliability, optical_reliability, optical_fusion_rule
        How the optical likelihood joins the SAR consensus: Dempster-Shafer fusion of the two
        with these reliabilities and rule (:func:`~mus_lab.flood.with_optical`). The optical
        default is low (0.3): on the sample scenario MNDWI alone reaches a flood CSI of 0.30
        (precision 0.32), and fused CSI was 0.664 / 0.698 / 0.712 with 0.8 / 0.5 / 0.3
        (SAR alone 0.629); see docs/design/0006-flood.md.
    train_confidence, train_samples, train_min_samples, texture_window, train_seed
        The ``self_trained`` voter: training pixels are those where every other method that
        sees the pixel gives a likelihood >= ``train_confidence`` (water) or <= ``1 -
        train_confidence`` (not water); at most ``train_samples`` per date, balanced
        between the classes; fewer than ``train_min_samples`` of either class and the
        voter abstains on that date. Features: VV, VH, VV - VH (dB), the local mean and
        standard deviation of each in a ``texture_window`` square, HAND when given.
    self_trained_weight
        Votes the ``self_trained`` voter counts for in the majority (the others count one):
        1 (default) was chosen on scenario seeds 1-2 among 1-4 (every weight above 1
        lowered the flood CSI) and checked on held-out seeds 3-5
        (``benchmarks/select_selftrain_weight.py``, docs/design/0006-flood.md).
    """

    methods: tuple[Method, ...] = METHODS
    threshold_method: Literal["em", "otsu"] = "em"
    thresholds: Mapping[str, float] | None = None
    tile: int | None = None
    n_tiles: int = 5
    min_valid: float = 0.8
    ashman_min: float = 2.0
    min_share: float = 0.1
    bc_min: float = 5.0 / 9.0
    bin_db: float = 0.25
    water_max_db: Mapping[str, float] = field(default_factory=lambda: {"vv": -18.0, "vh": -24.0})
    max_threshold_db: Mapping[str, float] = field(
        default_factory=lambda: {"vv": -15.5, "vh": -23.0}
    )
    softness_db: float = 1.0
    change_ratio: float = 1.25
    change_softness: float = 0.05
    smoothing_radius_m: float = 50.0
    min_group_px: int = 8
    reference_dates: int = 3
    seed_likelihood: float = 0.95
    grow_tolerance_db: float = 0.5
    grow_depth: int = 64
    hand_max_m: float = 15.0
    hand_fraction: float = 0.8
    slope_max_deg: float = 15.0
    change_slope_max_deg: float = 5.0
    reference_frequency: float = 10 / 12
    lookalike_frequency: float = 0.9
    optical_index: Literal["mndwi", "ndwi"] = "mndwi"
    optical_max_days: int = 3
    optical_softness: float = 0.1
    sar_reliability: float = 0.9
    optical_reliability: float = 0.3
    optical_fusion_rule: str = "dempster"
    train_confidence: float = 0.8
    train_samples: int = 20_000
    train_min_samples: int = 100
    texture_window: int = 5
    train_seed: int = 0
    self_trained_weight: float = 1.0

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in ALL_METHODS]
        if unknown or not self.methods:
            raise FloodInputError(f"methods={self.methods!r}: choose one or more of {ALL_METHODS}.")
        if self.methods == ("self_trained",):
            raise FloodInputError(
                "methods=('self_trained',): the self-trained voter learns from the other "
                "methods; add 'threshold' (and 'change', 'region')."
            )
        if not 0.5 < self.train_confidence < 1.0 or self.texture_window < 3:
            raise FloodInputError(
                f"train_confidence={self.train_confidence}, texture_window="
                f"{self.texture_window}: give a confidence in (0.5, 1) and a window >= 3 px."
            )
        if not (np.isfinite(self.self_trained_weight) and self.self_trained_weight > 0):
            raise FloodInputError(
                f"self_trained_weight={self.self_trained_weight}: give a positive number "
                "(1: one vote like the other methods)."
            )
        if self.threshold_method not in ("em", "otsu"):
            raise FloodInputError(
                f"threshold_method={self.threshold_method!r}: choose 'em' or 'otsu'."
            )
        if self.tile is not None and (self.tile < 8 or self.tile % 2):
            raise FloodInputError(f"tile={self.tile}: give an even number of pixels >= 8.")
        if self.optical_index not in ("mndwi", "ndwi"):
            raise FloodInputError(
                f"optical_index={self.optical_index!r}: choose 'mndwi' or 'ndwi'."
            )

    def with_(self, **changes: Any) -> MappingOptions:
        """A copy with some settings changed (checked like a new instance).

        Parameters
        ----------
        **changes
            Settings by name, e.g. ``methods=("threshold",)``.

        Returns
        -------
        MappingOptions

        Raises
        ------
        FloodInputError
            A changed setting is impossible.

        Examples
        --------
        >>> MappingOptions().with_(tile=128).tile
        128
        """
        return MappingOptions(**(asdict(self) | changes))

    def to_parameters(self) -> dict[str, Any]:
        """Plain values for STAC provenance (``mus_lab:parameters``).

        Returns
        -------
        dict
            Every setting by name; tuples become lists and mappings dicts (JSON-ready).

        Examples
        --------
        >>> MappingOptions().to_parameters()["methods"]
        ['threshold', 'change', 'region']
        """
        out: dict[str, Any] = {}
        for k, v in asdict(self).items():
            out[k] = dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v
        return out
