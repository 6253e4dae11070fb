"""Dempster-Shafer fusion of land-cover maps (optical and radar), with confidence indices.

An evidence engine over a frame of classes with compound focal sets (bit masks), vectorised
over pixels (numba) and run chunk by chunk on dask-backed cubes; masses from classifier
outputs (IOTA²/OTB label maps with confusion matrices, or probability cubes); combination
rules as plug-ins. One entry point, :func:`fuse` with its :class:`FusionOptions`, takes
land-cover products (in memory or from a catalog), label maps, probability cubes or mass
cubes and makes the ``landcover-fused`` product (fused class, belief, plausibility,
conflict, ignorance, confidence, agreement); :func:`evaluate_fusion` scores it. Land-cover products
(:class:`mus_lab.publish.LandCoverProduct`, made in memory or read with
:func:`mus_lab.recipes.sources_from_catalog`) are inputs as they are; :func:`split_held_out`
gives the reference polygons that trained none of them, in a calibration and an evaluation
half.

Example
-------
>>> from mus_lab.fusion import Frame, MassFunction, combine
>>> frame = Frame((1, 2, 3), ("a", "b", "c"))
>>> m1 = MassFunction.from_dict(frame, {"a": 0.6, "b": 0.3, frame.classes: 0.1})
>>> m2 = MassFunction.from_dict(frame, {"b": 0.7, "c": 0.1, frame.classes: 0.2})
>>> round(float(combine([m1, m2]).mass("b")), 4)
0.6939
"""

from mus_lab.fusion._api import FusionSource, LandCoverLike, fuse
from mus_lab.fusion._deprecated import combine_cubes, fuse_labels, fuse_maps, fuse_probabilities
from mus_lab.fusion._engine import (
    Decision,
    belief,
    combine,
    conflict,
    decide,
    discount,
    pignistic,
    plausibility,
)
from mus_lab.fusion._evaluate import FusionEvaluation, evaluate_fusion, split_reference
from mus_lab.fusion._frame import NODATA, UNDECIDED, Frame, MassFunction
from mus_lab.fusion._fuse import AGREEMENT_CODES, CONFIDENCE_DEFINITION, mass_cube
from mus_lab.fusion._held_out import LandCoverSource, split_held_out
from mus_lab.fusion._labels import label_table, otb_decision
from mus_lab.fusion._maps import open_map
from mus_lab.fusion._masses import (
    confused_pairs,
    frame_of,
    label_masses,
    masses_from_labels,
    masses_from_probabilities,
    reliability_from_confusion,
    transfer_matrix,
)
from mus_lab.fusion._options import FusionOptions, LabelDecision, Masses, Output
from mus_lab.fusion._probabilities import labels_of
from mus_lab.fusion._rules import (
    PCR5,
    PCR6,
    CombinationRule,
    Conjunctive,
    Dempster,
    Disjunctive,
    Yager,
    available_rules,
    get_rule,
    register_rule,
)
from mus_lab.fusion._write import FUSED_COLLECTION, write_fused

__all__ = [
    "AGREEMENT_CODES",
    "CONFIDENCE_DEFINITION",
    "FUSED_COLLECTION",
    "NODATA",
    "PCR5",
    "PCR6",
    "UNDECIDED",
    "CombinationRule",
    "Conjunctive",
    "Decision",
    "Dempster",
    "Disjunctive",
    "Frame",
    "FusionEvaluation",
    "FusionOptions",
    "FusionSource",
    "LabelDecision",
    "LandCoverLike",
    "LandCoverSource",
    "MassFunction",
    "Masses",
    "Output",
    "Yager",
    "available_rules",
    "belief",
    "combine",
    "combine_cubes",
    "conflict",
    "confused_pairs",
    "decide",
    "discount",
    "evaluate_fusion",
    "frame_of",
    "fuse",
    "fuse_labels",
    "fuse_maps",
    "fuse_probabilities",
    "get_rule",
    "label_masses",
    "label_table",
    "labels_of",
    "mass_cube",
    "masses_from_labels",
    "masses_from_probabilities",
    "open_map",
    "otb_decision",
    "pignistic",
    "plausibility",
    "register_rule",
    "reliability_from_confusion",
    "split_held_out",
    "split_reference",
    "transfer_matrix",
    "write_fused",
]
