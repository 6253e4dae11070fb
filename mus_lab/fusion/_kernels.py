"""Numba kernels of the evidence engine, vectorised over pixels.

Every kernel walks the pixels in blocks of :data:`BLOCK`: inside a block the loops run over
focal-set pairs outside and pixels inside, so the innermost loop is a plain SIMD-friendly
stream over a few kilobytes that stay in the L1/L2 cache (1024 pixels: the per-block costs, views
and their reference counts, are spread thin; 256 was 15-20 % slower). A source's block without
NaN is read in place, not copied. The focal-set algebra (which pair
of sets meets in which set) is worked out once in Python as small integer tables
(:mod:`mus_lab.fusion._rules`), so the kernels never touch a bit mask.

Arithmetic is float64 inside (inputs may be float32); outputs are float32 / uint8.

For chunks of 512 x 512 px and more, the two-source max-belief case (Dempster, Yager, the
conjunctive rule) runs a kernel generated for its layout of focal sets instead
(:mod:`mus_lab.fusion._codegen`): the same operations in the same order, straight-line per
pixel, about twice as fast.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

BLOCK = 1024
RULE_CONJ, RULE_DEMPSTER, RULE_YAGER, RULE_DISJ, RULE_PCR = 0, 1, 2, 3, 4
BY_BEL, BY_PL, BY_BETP = 0, 1, 2
#: Two decision scores within this relative difference are a tie (-> undecided).
TIE_TOL = 1e-9
#: The same for float32 arithmetic (cubes), a few float32 ulps.
TIE_TOL32 = 2e-6
#: 1 - K at or below this is total conflict for Dempster's rule (float64, float32 arithmetic).
TOTAL_CONFLICT_EPS = 1e-12
TOTAL_CONFLICT_EPS32 = 1e-6
TC_VACUOUS, TC_FLAG = 0, 1
UNDECIDED = 255
#: Rule code of a plug-in rule (its masses are materialised in Python, then summarised).
RULE_PLUGIN = -1


class PairTables(NamedTuple):
    """Where each pair of focal sets of two sources goes under a built-in rule (``fuse2``).

    Built once per rule and pair of focal-set lists (:func:`mus_lab.fusion._rules.pair_tables`).
    """

    #: (Fa, Fb) output row of the intersection, -1 when it is empty.
    tgt: np.ndarray
    #: (Fa, Fb) the intersection is empty (conflict).
    tk: np.ndarray
    #: (Fa, Fb) class index of a singleton intersection, else -1.
    tsing: np.ndarray
    #: (Fa, Fb) output row of the union (disjunctive rule only).
    tdisj: np.ndarray
    #: (Fa,) / (Fb,) output row of each source's own focal set (PCR), -1 if absent.
    ia: np.ndarray
    ib: np.ndarray
    #: Row of the whole frame in each source.
    omega_a: int
    omega_b: int
    #: Number of output focal sets, and rows of the frame and of the empty set (-1: none).
    n_out: int
    omega_row: int
    empty_row: int


class SummaryTables(NamedTuple):
    """Which classes each combined focal set holds (CSR both ways), per output focal-set list."""

    #: Classes of output set t: ``memb_idx[memb_ptr[t]:memb_ptr[t + 1]]``.
    memb_ptr: np.ndarray
    memb_idx: np.ndarray
    #: Output sets holding class c: ``cls_rows[cls_ptr[c]:cls_ptr[c + 1]]``.
    cls_ptr: np.ndarray
    cls_rows: np.ndarray
    #: 1 / |set| per output set (0 for the empty set).
    inv_size: np.ndarray
    #: Output row of each class's singleton, -1 if absent.
    sing: np.ndarray
    #: Class codes (uint8), frame order.
    codes: np.ndarray
    omega_row: int
    empty_row: int


class Params(NamedTuple):
    """Scalars of one fusion call."""

    rule: int
    #: TC_VACUOUS or TC_FLAG (count total conflict, leave it to the caller).
    tc_mode: int
    #: BY_BEL, BY_PL or BY_BETP.
    by: int
    tie: float
    eps: float


class Outputs(NamedTuple):
    """The product variables, ``(n_pixels,)`` each, filled by the kernels."""

    fused_class: np.ndarray
    belief: np.ndarray
    plausibility: np.ndarray
    conflict: np.ndarray
    ignorance: np.ndarray
    confidence: np.ndarray
    agreement: np.ndarray


class Block(NamedTuple):
    """Combined masses of one block of pixels and what the summary reads besides them."""

    #: (F_out, bs) masses, possibly unnormalised (``scale`` turns them into the rule's).
    buf: np.ndarray
    #: Conflict K and conjunctive singleton masses (C, bs).
    kk: np.ndarray
    cs: np.ndarray
    scale: np.ndarray
    #: Dempster's total conflict (vacuous result), and pixels some source covers.
    total: np.ndarray
    valid: np.ndarray


class Work(NamedTuple):
    """Scratch rows of the summary (allocated once per kernel call)."""

    bel: np.ndarray
    pl: np.ndarray
    betp: np.ndarray
    best: np.ndarray
    thr: np.ndarray
    arg: np.ndarray
    cnt: np.ndarray
    maxbel: np.ndarray
    maxpl: np.ndarray
    zero: np.ndarray
    #: Class code of the highest score, and the decided class's Pl (float64 sums).
    code: np.ndarray
    plsel: np.ndarray


@njit(cache=True, nogil=True)
def _work(n_cls, dt):  # pragma: no cover - numba
    return Work(
        np.empty((n_cls, BLOCK), dt),
        np.empty((n_cls, BLOCK), dt),
        np.empty((n_cls, BLOCK), dt),
        np.empty(BLOCK, dt),
        np.empty(BLOCK, dt),
        np.empty(BLOCK, np.int32),
        np.empty(BLOCK, np.int32),
        np.empty(BLOCK, dt),
        np.empty(BLOCK, dt),
        np.zeros(BLOCK, dt),
        np.zeros(BLOCK, np.int32),
        np.empty(BLOCK, np.float64),
    )


@njit(cache=True, nogil=True)
def pairs_accumulate(a, b, tgt, out):  # pragma: no cover - numba
    """``out[tgt[i, j]] += a[i] * b[j]`` over all pixels (``out`` zeroed by the caller)."""
    n = a.shape[1]
    for p0 in range(0, n, BLOCK):
        p1 = min(p0 + BLOCK, n)
        for i in range(a.shape[0]):
            for j in range(b.shape[0]):
                t = tgt[i, j]
                for p in range(p0, p1):
                    out[t, p] += a[i, p] * b[j, p]


@njit(cache=True, nogil=True)
def pcr6_tuples(stack, tuples, inter, dest, out):  # pragma: no cover - numba
    """PCR6 over N sources: each product of a tuple of focal sets goes to their intersection,
    or, when it is empty, back to each set of the tuple in proportion to its own mass.

    ``stack`` (N, F_max, n) masses; ``tuples`` (T, N) focal indices; ``inter`` (T,) output row
    of the intersection or -1; ``dest`` (N, F_max) output row of each source's focal set.
    """
    n_src = stack.shape[0]
    n = stack.shape[2]
    prod = np.empty(BLOCK)
    tot = np.empty(BLOCK)
    for p0 in range(0, n, BLOCK):
        bs = min(BLOCK, n - p0)
        for t in range(tuples.shape[0]):
            for q in range(bs):
                prod[q] = 1.0
            for s in range(n_src):
                k = tuples[t, s]
                for q in range(bs):
                    prod[q] *= stack[s, k, p0 + q]
            it = inter[t]
            if it >= 0:
                for q in range(bs):
                    out[it, p0 + q] += prod[q]
                continue
            for q in range(bs):
                tot[q] = 0.0
            for s in range(n_src):
                k = tuples[t, s]
                for q in range(bs):
                    tot[q] += stack[s, k, p0 + q]
            for s in range(n_src):
                k = tuples[t, s]
                d = dest[s, k]
                for q in range(bs):
                    if tot[q] > 0.0:
                        out[d, p0 + q] += prod[q] * stack[s, k, p0 + q] / tot[q]


@njit(cache=True, nogil=True, inline="always")
def _cs_is_bel(rule):  # pragma: no cover - numba
    """Dempster, Yager, conjunctive: the conjunctive singleton masses are Bel itself."""
    return rule == RULE_DEMPSTER or rule == RULE_YAGER or rule == RULE_CONJ


@njit(cache=True, nogil=True)
def _copy_singletons(buf, sing, dst, bs):  # pragma: no cover - numba
    """``dst[c] = buf[sing[c]]`` (0 where class c's singleton is not a focal set)."""
    for c in range(sing.shape[0]):
        r = sing[c]
        drow = dst[c]
        if r >= 0:
            src = buf[r]
            for q in range(bs):
                drow[q] = src[q]
        else:
            for q in range(bs):
                drow[q] = 0.0


@njit(cache=True, nogil=True)
def _special_pixels(blk, bs, p0, out):  # pragma: no cover - numba
    """Conflict of every pixel, and the outputs of pixels no source covers (no data) or in
    Dempster's total conflict (vacuous result: undecided), over what the summary wrote.

    Namedtuple fields are read once, outside the pixel loop (each read of an array field
    inside it costs a reference count).
    """
    kk, total, valid = blk.kk, blk.total, blk.valid
    n_odd = 0
    for q in range(bs):
        n_odd += total[q] | (not valid[q])
    if not n_odd:
        o_k = out.conflict[p0 : p0 + bs]
        for q in range(bs):
            o_k[q] = kk[q]
        return
    o_class, o_bel, o_pl = out.fused_class, out.belief, out.plausibility
    o_conf, o_ign, o_conflict = out.confidence, out.ignorance, out.conflict
    nan = np.float32(np.nan)
    for q in range(bs):
        p = p0 + q
        if not valid[q]:
            o_class[p] = 0
            o_bel[p] = nan
            o_pl[p] = nan
            o_conf[p] = nan
            o_ign[p] = nan
            o_conflict[p] = nan
            continue
        o_conflict[p] = kk[q]
        if total[q]:
            o_class[p] = UNDECIDED
            o_bel[p] = 0.0
            o_pl[p] = 1.0
            o_conf[p] = 0.0
            o_ign[p] = 1.0


@njit(cache=True, nogil=True)
def _summarise_block(blk, bs, p0, st, prm, w, out):  # pragma: no cover - numba
    """Bel, Pl (and BetP) of each class, decision with ties, and the per-pixel outputs.

    ``blk.buf`` may be unnormalised: ``blk.scale`` (per pixel) turns Bel, Pl and ignorance into
    the rule's values; ranks do not depend on it. ``blk.total`` marks Dempster's total conflict
    (vacuous result).
    """
    buf = blk.buf
    by = prm.by
    sing, omega_row, inv_size = st.sing, st.omega_row, st.inv_size
    memb_ptr, memb_idx = st.memb_ptr, st.memb_idx
    bel, pl, betp = w.bel, w.pl, w.betp
    best, arg, cnt, maxbel, maxpl = w.best, w.arg, w.cnt, w.maxbel, w.maxpl
    n_cls = st.codes.shape[0]
    n_out = buf.shape[0]
    _copy_singletons(buf, sing, bel, bs)
    for c in range(n_cls):
        prow = pl[c]
        trow = betp[c]
        if omega_row >= 0:
            om = buf[omega_row]
            wt = inv_size[omega_row]
            for q in range(bs):
                prow[q] = om[q]
            if by == BY_BETP:
                for q in range(bs):
                    trow[q] = om[q] * wt
        else:
            for q in range(bs):
                prow[q] = 0.0
            if by == BY_BETP:
                for q in range(bs):
                    trow[q] = 0.0
    for t in range(n_out):
        if t == omega_row:
            continue
        src = buf[t]
        wt = inv_size[t]
        for k in range(memb_ptr[t], memb_ptr[t + 1]):
            c = memb_idx[k]
            prow = pl[c]
            for q in range(bs):
                prow[q] += src[q]
            if by == BY_BETP:
                trow = betp[c]
                for q in range(bs):
                    trow[q] += src[q] * wt
    dec = bel if by == BY_BEL else (pl if by == BY_PL else betp)
    for q in range(bs):
        best[q] = -1.0
        arg[q] = 0
        cnt[q] = 0
        maxbel[q] = 0.0
        maxpl[q] = 0.0
    for c in range(n_cls):
        drow = dec[c]
        brow = bel[c]
        prow = pl[c]
        for q in range(bs):
            v = drow[q]
            if v > best[q]:
                best[q] = v
                arg[q] = c
            maxbel[q] = max(maxbel[q], brow[q])
            maxpl[q] = max(maxpl[q], prow[q])
    for q in range(bs):
        best[q] = best[q] * (1.0 - prm.tie)
    for c in range(n_cls):
        drow = dec[c]
        for q in range(bs):
            cnt[q] += drow[q] >= best[q]
    cs_is_bel = _cs_is_bel(prm.rule)
    codes, cs, scale = st.codes, blk.cs, blk.scale
    o_class, o_bel, o_pl = out.fused_class, out.belief, out.plausibility
    o_conf, o_ign = out.confidence, out.ignorance
    for q in range(bs):
        p = p0 + q
        s = scale[q]
        o_ign[p] = buf[omega_row, q] * s  # the frame is always among the sets
        if cnt[q] > 1:
            o_class[p] = UNDECIDED
            o_bel[p] = maxbel[q] * s
            o_pl[p] = maxpl[q] * s
            o_conf[p] = 0.0
        else:
            c = arg[q]
            o_class[p] = codes[c]
            o_bel[p] = bel[c, q] * s
            o_pl[p] = pl[c, q] * s
            o_conf[p] = bel[c, q] if cs_is_bel else cs[c, q]
    _special_pixels(blk, bs, p0, out)


@njit(cache=True, nogil=True)
def _summarise_bel_block(blk, bs, p0, st, prm, w, out):  # pragma: no cover - numba
    """Max-belief decision and outputs, lean: Bel of a class is its singleton's mass, so only
    the singleton rows are scanned; Pl is summed for the decided class only.

    Every pass is a plain stream over the block (vectorised): the decided class's Pl is the
    sum, in row order, of each row times "the row holds the decided class" (0 or 1: the same
    float64 sum as adding the rows that hold it); ties (undecided pixels), no-data pixels and
    Dempster's total conflict are rare and fixed up pixel by pixel afterwards, in blocks that
    have any.
    """
    buf = blk.buf
    sing, cls_ptr, cls_rows = st.sing, st.cls_ptr, st.cls_rows
    memb_ptr, memb_idx = st.memb_ptr, st.memb_idx
    best, thr, arg, cnt, zero = w.best, w.thr, w.arg, w.cnt, w.zero
    code, plsel = w.code, w.plsel
    n_cls = st.codes.shape[0]
    n_out = buf.shape[0]
    codes = st.codes
    first = np.int32(codes[0])
    for q in range(bs):
        best[q] = -1.0
        arg[q] = 0
        code[q] = first
        cnt[q] = 0
    for c in range(n_cls):
        row = buf[sing[c]] if sing[c] >= 0 else zero
        ci = np.int32(c)
        cc = np.int32(codes[c])
        for q in range(bs):
            v = row[q]
            gt = v > best[q]
            best[q] = v if gt else best[q]
            arg[q] = ci if gt else arg[q]
            code[q] = cc if gt else code[q]
    for q in range(bs):
        thr[q] = best[q] * (1.0 - prm.tie)
    one = np.int32(1)
    for c in range(n_cls):
        row = buf[sing[c]] if sing[c] >= 0 else zero
        for q in range(bs):
            cnt[q] += one if row[q] >= thr[q] else np.int32(0)
    n_ties = 0
    for q in range(bs):
        n_ties += cnt[q] > 1
    for q in range(bs):
        plsel[q] = 0.0
    for t in range(n_out):
        rmask = np.int64(0)
        for k in range(memb_ptr[t], memb_ptr[t + 1]):
            rmask |= np.int64(1) << memb_idx[k]
        if rmask == 0:
            continue
        row = buf[t]
        for q in range(bs):
            # adding the row's value where it holds the decided class, +0.0 elsewhere: the
            # float64 sum of the rows that hold it, in row order
            plsel[q] += np.float64(row[q]) if (rmask >> arg[q]) & 1 else 0.0
    cs_is_bel = _cs_is_bel(prm.rule)
    omega_row, cs, scale = st.omega_row, blk.cs, blk.scale
    om = buf[omega_row]  # the frame is always among the sets
    p1 = p0 + bs  # views of the block: an index p0 + q would not vectorise (sign checks)
    o_class, o_bel, o_pl = out.fused_class[p0:p1], out.belief[p0:p1], out.plausibility[p0:p1]
    o_conf, o_ign = out.confidence[p0:p1], out.ignorance[p0:p1]
    for q in range(bs):
        s = scale[q]
        o_ign[q] = om[q] * s
        o_bel[q] = best[q] * s
        o_pl[q] = plsel[q] * s
        o_class[q] = code[q]
    if cs_is_bel:
        for q in range(bs):
            o_conf[q] = best[q]
    else:
        for c in range(n_cls):
            crow = cs[c]
            for q in range(bs):
                o_conf[q] = crow[q] if arg[q] == c else o_conf[q]
    if n_ties:
        for q in range(bs):
            if cnt[q] <= 1:
                continue
            top = 0.0
            for c in range(n_cls):
                acc = 0.0
                for k in range(cls_ptr[c], cls_ptr[c + 1]):
                    acc += buf[cls_rows[k], q]
                top = max(top, acc)
            o_class[q] = UNDECIDED
            o_pl[q] = top * scale[q]
            o_conf[q] = 0.0
    _special_pixels(blk, bs, p0, out)


@njit(cache=True, nogil=True)
def _agreement_block(labels, o_class, o_agree, p0, bs):  # pragma: no cover - numba
    """1 every source agrees with the result, 3 the first does (not all), 2 another does, 0 none."""
    n_src = labels.shape[0]
    if n_src == 2:  # branch-free, vectorised: 1 both, 3 the first only, 2 the second only
        first = labels[0, p0 : p0 + bs]
        second = labels[1, p0 : p0 + bs]
        fused = o_class[p0 : p0 + bs]
        agree = o_agree[p0 : p0 + bs]
        for q in range(bs):
            f = fused[q]
            e0 = np.uint8(first[q] == f)
            e1 = np.uint8(second[q] == f)
            ok = np.uint8((f != 0) & (f != UNDECIDED))
            agree[q] = ok * (e0 * e1 + np.uint8(3) * e0 * (1 - e1) + np.uint8(2) * e1 * (1 - e0))
        return
    for q in range(bs):
        p = p0 + q
        f = o_class[p]
        if f == 0 or f == UNDECIDED:
            o_agree[p] = 0
            continue
        every = True
        other = False
        for s in range(n_src):
            eq = labels[s, p] == f
            every = every and eq
            if s > 0 and eq:
                other = True
        if every:
            o_agree[p] = 1
        elif labels[0, p] == f:
            o_agree[p] = 3
        elif other:
            o_agree[p] = 2
        else:
            o_agree[p] = 0


@njit(cache=True, nogil=True)
def _load_block(src, omega, dst, acc, ok, p0, bs):  # pragma: no cover - numba
    """Copy a block of one source; pixels with any NaN become vacuous (all mass on omega).

    NaN is detected through a running sum (NaN propagates), which keeps the copy loop a plain
    vectorised stream.
    """
    nf = src.shape[0]
    for q in range(bs):
        acc[q] = 0.0
    for i in range(nf):
        srow = src[i, p0 : p0 + bs]
        drow = dst[i]
        for q in range(bs):
            v = srow[q]
            drow[q] = v
            acc[q] += v
    n_bad = 0
    for q in range(bs):
        good = acc[q] == acc[q]
        ok[q] = good
        n_bad += not good
    if n_bad:
        for q in range(bs):
            if not ok[q]:
                acc[q] = 1.0
                for i in range(nf):
                    dst[i, q] = 1.0 if i == omega else 0.0


@njit(cache=True, nogil=True)
def _sum_block(src, acc, p0, bs):  # pragma: no cover - numba
    """Sum of the focal planes of one block of a source (row order, as :func:`_load_block`);
    returns how many pixels hold a NaN (0: the block is used in place, not copied)."""
    for q in range(bs):
        acc[q] = 0.0
    for i in range(src.shape[0]):
        srow = src[i, p0 : p0 + bs]
        for q in range(bs):
            acc[q] += srow[q]
    n_bad = 0
    for q in range(bs):
        n_bad += not (acc[q] == acc[q])
    return n_bad


@njit(cache=True, nogil=True, inline="always")
def _block_of(src, omega, buf, acc, ok, p0, bs):  # pragma: no cover - numba
    """The block's planes: the source itself from ``p0`` when it has no NaN (``ok`` all
    True), else a copy in ``buf`` (from 0) with the NaN pixels vacuous."""
    if _sum_block(src, acc, p0, bs):
        _load_block(src, omega, buf, acc, ok, p0, bs)
        return buf, 0
    for q in range(bs):
        ok[q] = True
    return src, p0


@njit(cache=True, nogil=True, error_model="numpy")  # divisions are guarded: no checks
def fuse2(a, b, labels, pt, st, prm, out):  # pragma: no cover - numba
    """Two sources in one pass: combine (any built-in rule), decide, summarise, agreement.

    ``a``, ``b`` (F, n) masses (NaN: no data), ``labels`` (2, n) each source's own class;
    ``pt`` :class:`PairTables`, ``st`` :class:`SummaryTables` of the output sets, ``prm``
    :class:`Params`, ``out`` :class:`Outputs`. Arithmetic is in the inputs' dtype (float32
    cubes: float32). Returns the number of valid pixels in total conflict (K = 1) under
    Dempster's rule.
    """
    n = a.shape[1]
    fa, fb = a.shape[0], b.shape[0]
    n_cls = st.codes.shape[0]
    n_out = pt.n_out
    dt = a.dtype
    rule = prm.rule
    tgt, tk, tsing, tdisj, ia, ib = pt.tgt, pt.tk, pt.tsing, pt.tdisj, pt.ia, pt.ib
    sing = st.sing
    ab = np.empty((fa, BLOCK), dt)
    bb = np.empty((fb, BLOCK), dt)
    acca = np.empty(BLOCK, dt)
    accb = np.empty(BLOCK, dt)
    norm = np.empty(BLOCK, dt)
    oka = np.empty(BLOCK, np.bool_)
    okb = np.empty(BLOCK, np.bool_)
    blk = Block(
        np.empty((n_out, BLOCK), dt),
        np.empty(BLOCK, dt),
        np.empty((n_cls, BLOCK), dt),
        np.ones(BLOCK, dt),
        np.zeros(BLOCK, np.bool_),
        np.empty(BLOCK, np.bool_),
    )
    buf, kk, cs, scale, total, valid = blk
    w = _work(n_cls, dt)
    n_total = 0
    for p0 in range(0, n, BLOCK):
        bs = min(BLOCK, n - p0)
        xa, oa = _block_of(a, pt.omega_a, ab, acca, oka, p0, bs)
        xb, ob = _block_of(b, pt.omega_b, bb, accb, okb, p0, bs)
        for q in range(bs):
            valid[q] = oka[q] | okb[q]
            kk[q] = 0.0
        for t in range(n_out):
            row = buf[t]
            for q in range(bs):
                row[q] = 0.0
        if rule != RULE_DISJ:
            # Only the pairs that meet: K comes from the sums (K = sum(a) sum(b) - the rest),
            # which skips about half of the pairs for a frame of singletons.
            for i in range(fa):
                arow = xa[i, oa : oa + bs]
                for j in range(fb):
                    t = tgt[i, j]
                    if t < 0:
                        continue
                    brow = xb[j, ob : ob + bs]
                    row = buf[t]
                    for q in range(bs):
                        row[q] += arow[q] * brow[q]
            for q in range(bs):
                norm[q] = 0.0
            for t in range(n_out):
                row = buf[t]
                for q in range(bs):
                    norm[q] += row[q]
            for q in range(bs):
                x = acca[q] * accb[q] - norm[q]
                kk[q] = x if x > 0.0 else 0.0
            if rule == RULE_PCR:
                _copy_singletons(buf, sing, cs, bs)
                for i in range(fa):
                    di = buf[ia[i]]
                    arow = xa[i, oa : oa + bs]
                    for j in range(fb):
                        if tgt[i, j] >= 0:
                            continue
                        dj = buf[ib[j]]
                        brow = xb[j, ob : ob + bs]
                        for q in range(bs):
                            x = arow[q]
                            y = brow[q]
                            s = x + y
                            if s > 0.0:
                                xy = x * y / s
                                di[q] += x * xy
                                dj[q] += y * xy
        else:
            for c in range(n_cls):
                crow = cs[c]
                for q in range(bs):
                    crow[q] = 0.0
            for i in range(fa):
                arow = xa[i, oa : oa + bs]
                for j in range(fb):
                    brow = xb[j, ob : ob + bs]
                    row = buf[tdisj[i, j]]
                    for q in range(bs):
                        row[q] += arow[q] * brow[q]
                    if tk[i, j]:
                        for q in range(bs):
                            kk[q] += arow[q] * brow[q]
                    elif tsing[i, j] >= 0:
                        crow = cs[tsing[i, j]]
                        for q in range(bs):
                            crow[q] += arow[q] * brow[q]
        if rule == RULE_DEMPSTER:
            # 1 - K is the sum of the non-empty products (norm): no cancellation near K = 1.
            eps = prm.eps
            for q in range(bs):
                d = norm[q]
                tcq = d <= eps
                total[q] = tcq
                scale[q] = 0.0 if tcq else 1.0 / d
                n_total += tcq & valid[q]
            if prm.tc_mode != TC_VACUOUS:
                for q in range(bs):
                    total[q] = False
        elif rule == RULE_YAGER:
            om = buf[pt.omega_row]
            for q in range(bs):
                om[q] += kk[q]
        elif rule == RULE_CONJ:
            em = buf[pt.empty_row]
            for q in range(bs):
                em[q] = kk[q]
        if prm.by == BY_BEL:
            _summarise_bel_block(blk, bs, p0, st, prm, w, out)
        else:
            _summarise_block(blk, bs, p0, st, prm, w, out)
        _agreement_block(labels, out.fused_class, out.agreement, p0, bs)
    return n_total


@njit(cache=True, nogil=True)
def summarise(m, kk, cs, valid, labels, st, prm, out):  # pragma: no cover - numba
    """Outputs from materialised combined masses ``m`` (F_out, n), conflict and Bel_conj.

    ``prm.rule`` is :data:`RULE_PLUGIN`: the confidence is read from ``cs``.
    """
    n = m.shape[1]
    n_cls = st.codes.shape[0]
    dt = m.dtype
    w = _work(n_cls, dt)
    scale = np.ones(BLOCK, dt)
    total = np.zeros(BLOCK, np.bool_)
    for p0 in range(0, n, BLOCK):
        p1 = min(p0 + BLOCK, n)
        blk = Block(m[:, p0:p1], kk[p0:p1], cs[:, p0:p1], scale, total, valid[p0:p1])
        _summarise_block(blk, p1 - p0, p0, st, prm, w, out)
        _agreement_block(labels, out.fused_class, out.agreement, p0, p1 - p0)


@njit(cache=True, nogil=True)
def class_scores(m, st, bel, pl, betp):  # pragma: no cover - numba
    """Bel, Pl and (unnormalised) BetP of every singleton class: (C, n) each."""
    n = m.shape[1]
    sing, inv_size, memb_ptr, memb_idx = st.sing, st.inv_size, st.memb_ptr, st.memb_idx
    for c in range(st.codes.shape[0]):
        r = sing[c]
        for p in range(n):
            bel[c, p] = m[r, p] if r >= 0 else 0.0
            pl[c, p] = 0.0
            betp[c, p] = 0.0
    for t in range(m.shape[0]):
        w = inv_size[t]
        for k in range(memb_ptr[t], memb_ptr[t + 1]):
            c = memb_idx[k]
            for p in range(n):
                pl[c, p] += m[t, p]
                betp[c, p] += m[t, p] * w


@njit(cache=True, nogil=True)
def transfer(prob, tt, out):  # pragma: no cover - numba
    """Masses from class probabilities, pixel by pixel in a fixed order (chunk-invariant).

    ``prob`` (C, n) is clipped at 0 and rescaled to sum 1 (NaN or all-zero pixels -> NaN);
    ``out[f] = sum_c tt[f, c] * p[c]``.
    """
    n_cls, n = prob.shape
    n_f = tt.shape[0]
    tot = np.empty(BLOCK, prob.dtype)
    for p0 in range(0, n, BLOCK):
        bs = min(BLOCK, n - p0)
        for q in range(bs):
            tot[q] = 0.0
        for c in range(n_cls):
            row = prob[c, p0 : p0 + bs]
            for q in range(bs):
                v = row[q]
                tot[q] += v if v > 0 else (v if v != v else 0.0)
        for q in range(bs):
            t = tot[q]
            tot[q] = 1.0 / t if t > 0 else np.nan
        for f in range(n_f):
            orow = out[f, p0 : p0 + bs]
            for q in range(bs):
                orow[q] = 0.0
            for c in range(n_cls):
                w = tt[f, c]
                if w == 0.0:
                    continue
                row = prob[c, p0 : p0 + bs]
                for q in range(bs):
                    v = row[q]
                    orow[q] += w * (v if v > 0 else (v if v != v else 0.0))
            for q in range(bs):
                orow[q] *= tot[q]
