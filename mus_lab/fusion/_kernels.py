"""Numba kernels of the evidence engine, vectorised over pixels.

Every kernel walks the pixels in blocks of :data:`BLOCK`: inside a block the loops run over
focal-set pairs outside and pixels inside, so the innermost loop is a plain SIMD-friendly
stream over a few kilobytes that stay in the L1/L2 cache. The focal-set algebra (which pair
of sets meets in which set) is worked out once in Python as small integer tables
(:mod:`mus_lab.fusion._rules`), so the kernels never touch a bit mask.

Arithmetic is float64 inside (inputs may be float32); outputs are float32 / uint8.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 256
RULE_CONJ, RULE_DEMPSTER, RULE_YAGER, RULE_DISJ, RULE_PCR = 0, 1, 2, 3, 4
BY_BEL, BY_PL, BY_BETP = 0, 1, 2
#: Two decision scores closer than this are a tie (-> undecided).
TIE_TOL = 1e-9
#: 1 - K below this is total conflict for Dempster's rule.
TOTAL_CONFLICT_EPS = 1e-12
TC_VACUOUS, TC_FLAG = 0, 1
UNDECIDED = 255


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


@njit(cache=True, nogil=True)
def _summarise_block(
    buf,
    kk,
    cs,
    valid,
    bs,
    memb_ptr,
    memb_idx,
    inv_size,
    sing,
    omega_row,
    codes,
    by,
    bel,
    pl,
    dec,
    best,
    arg,
    cnt,
    maxbel,
    maxpl,
    o_class,
    o_bel,
    o_pl,
    o_conf,
    o_ign,
    o_conflict,
    p0,
):  # pragma: no cover - numba
    """Bel, Pl (and BetP) of each class, decision with ties, and the per-pixel outputs."""
    n_cls = codes.shape[0]
    n_out = buf.shape[0]
    for c in range(n_cls):
        r = sing[c]
        for q in range(bs):
            bel[c, q] = buf[r, q] if r >= 0 else 0.0
            pl[c, q] = 0.0
            dec[c, q] = 0.0
    for t in range(n_out):
        w = inv_size[t]
        for k in range(memb_ptr[t], memb_ptr[t + 1]):
            c = memb_idx[k]
            for q in range(bs):
                pl[c, q] += buf[t, q]
            if by == BY_BETP:
                for q in range(bs):
                    dec[c, q] += buf[t, q] * w
    if by == BY_BEL:
        for c in range(n_cls):
            for q in range(bs):
                dec[c, q] = bel[c, q]
    elif by == BY_PL:
        for c in range(n_cls):
            for q in range(bs):
                dec[c, q] = pl[c, q]
    for q in range(bs):
        best[q] = -1.0
        arg[q] = 0
        cnt[q] = 0
        maxbel[q] = 0.0
        maxpl[q] = 0.0
    for c in range(n_cls):
        for q in range(bs):
            v = dec[c, q]
            if v > best[q]:
                best[q] = v
                arg[q] = c
            maxbel[q] = max(maxbel[q], bel[c, q])
            maxpl[q] = max(maxpl[q], pl[c, q])
    for c in range(n_cls):
        for q in range(bs):
            if dec[c, q] >= best[q] - TIE_TOL:
                cnt[q] += 1
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
        o_ign[p] = buf[omega_row, q] if omega_row >= 0 else 0.0
        if cnt[q] > 1:
            o_class[p] = UNDECIDED
            o_bel[p] = maxbel[q]
            o_pl[p] = maxpl[q]
            o_conf[p] = 0.0
        else:
            c = arg[q]
            o_class[p] = codes[c]
            o_bel[p] = bel[c, q]
            o_pl[p] = pl[c, q]
            o_conf[p] = cs[c, q]


@njit(cache=True, nogil=True)
def _agreement_block(labels, o_class, o_agree, p0, bs):  # pragma: no cover - numba
    """1 every source agrees with the result, 3 the first does (not all), 2 another does, 0 none."""
    n_src = labels.shape[0]
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
def _load_block(src, omega, dst, ok, p0, bs):  # pragma: no cover - numba
    """Copy a block of one source; pixels with any NaN become vacuous (all mass on omega)."""
    nf = src.shape[0]
    for q in range(bs):
        ok[q] = True
    for i in range(nf):
        for q in range(bs):
            v = src[i, p0 + q]
            if v != v:
                ok[q] = False
            dst[i, q] = v
    for q in range(bs):
        if not ok[q]:
            for i in range(nf):
                dst[i, q] = 1.0 if i == omega else 0.0


@njit(cache=True, nogil=True)
def fuse2(
    a,
    b,
    labels,
    rule,
    tc_mode,
    tgt,
    tk,
    tsing,
    tdisj,
    ia,
    ib,
    omega_a,
    omega_b,
    n_out,
    omega_row,
    empty_row,
    memb_ptr,
    memb_idx,
    inv_size,
    sing,
    codes,
    by,
    o_class,
    o_bel,
    o_pl,
    o_conf,
    o_ign,
    o_conflict,
    o_agree,
):  # pragma: no cover - numba
    """Two sources in one pass: combine (any built-in rule), decide, summarise, agreement.

    Returns the number of valid pixels in total conflict (K = 1) under Dempster's rule.
    """
    n = a.shape[1]
    fa, fb = a.shape[0], b.shape[0]
    n_cls = codes.shape[0]
    ab = np.empty((fa, BLOCK))
    bb = np.empty((fb, BLOCK))
    buf = np.empty((n_out, BLOCK))
    kk = np.empty(BLOCK)
    cs = np.empty((n_cls, BLOCK))
    oka = np.empty(BLOCK, dtype=np.bool_)
    okb = np.empty(BLOCK, dtype=np.bool_)
    valid = np.empty(BLOCK, dtype=np.bool_)
    scale = np.empty(BLOCK)
    bel = np.empty((n_cls, BLOCK))
    pl = np.empty((n_cls, BLOCK))
    dec = np.empty((n_cls, BLOCK))
    best = np.empty(BLOCK)
    arg = np.empty(BLOCK, dtype=np.int64)
    cnt = np.empty(BLOCK, dtype=np.int64)
    maxbel = np.empty(BLOCK)
    maxpl = np.empty(BLOCK)
    n_total = 0
    for p0 in range(0, n, BLOCK):
        bs = min(BLOCK, n - p0)
        _load_block(a, omega_a, ab, oka, p0, bs)
        _load_block(b, omega_b, bb, okb, p0, bs)
        for q in range(bs):
            valid[q] = oka[q] or okb[q]
            kk[q] = 0.0
        for t in range(n_out):
            for q in range(bs):
                buf[t, q] = 0.0
        for c in range(n_cls):
            for q in range(bs):
                cs[c, q] = 0.0
        if rule != RULE_DISJ:
            for i in range(fa):
                for j in range(fb):
                    t = tgt[i, j]
                    if t >= 0:
                        for q in range(bs):
                            buf[t, q] += ab[i, q] * bb[j, q]
                    else:
                        for q in range(bs):
                            kk[q] += ab[i, q] * bb[j, q]
            for c in range(n_cls):
                r = sing[c]
                if r >= 0:
                    for q in range(bs):
                        cs[c, q] = buf[r, q]
            if rule == RULE_PCR:
                for i in range(fa):
                    di = ia[i]
                    for j in range(fb):
                        if tgt[i, j] >= 0:
                            continue
                        dj = ib[j]
                        for q in range(bs):
                            x = ab[i, q]
                            y = bb[j, q]
                            s = x + y
                            if s > 0.0:
                                buf[di, q] += x * x * y / s
                                buf[dj, q] += y * y * x / s
        else:
            for i in range(fa):
                for j in range(fb):
                    u = tdisj[i, j]
                    conflict = tk[i, j]
                    c = tsing[i, j]
                    for q in range(bs):
                        prod = ab[i, q] * bb[j, q]
                        buf[u, q] += prod
                    if conflict:
                        for q in range(bs):
                            kk[q] += ab[i, q] * bb[j, q]
                    elif c >= 0:
                        for q in range(bs):
                            cs[c, q] += ab[i, q] * bb[j, q]
        if rule == RULE_DEMPSTER:
            for q in range(bs):
                d = 1.0 - kk[q]
                if d > TOTAL_CONFLICT_EPS:
                    scale[q] = 1.0 / d
                else:
                    scale[q] = 0.0
                    if valid[q]:
                        n_total += 1
            for t in range(n_out):
                for q in range(bs):
                    buf[t, q] *= scale[q]
            if tc_mode == TC_VACUOUS:
                for q in range(bs):
                    if scale[q] == 0.0:
                        buf[omega_row, q] = 1.0
        elif rule == RULE_YAGER:
            for q in range(bs):
                buf[omega_row, q] += kk[q]
        elif rule == RULE_CONJ:
            for q in range(bs):
                buf[empty_row, q] = kk[q]
        _summarise_block(
            buf,
            kk,
            cs,
            valid,
            bs,
            memb_ptr,
            memb_idx,
            inv_size,
            sing,
            omega_row,
            codes,
            by,
            bel,
            pl,
            dec,
            best,
            arg,
            cnt,
            maxbel,
            maxpl,
            o_class,
            o_bel,
            o_pl,
            o_conf,
            o_ign,
            o_conflict,
            p0,
        )
        _agreement_block(labels, o_class, o_agree, p0, bs)
    return n_total


@njit(cache=True, nogil=True)
def summarise(
    m,
    kk,
    cs,
    valid,
    labels,
    memb_ptr,
    memb_idx,
    inv_size,
    sing,
    omega_row,
    codes,
    by,
    o_class,
    o_bel,
    o_pl,
    o_conf,
    o_ign,
    o_conflict,
    o_agree,
):  # pragma: no cover - numba
    """Outputs from materialised combined masses ``m`` (F_out, n), conflict and Bel_conj."""
    n = m.shape[1]
    n_cls = codes.shape[0]
    bel = np.empty((n_cls, BLOCK))
    pl = np.empty((n_cls, BLOCK))
    dec = np.empty((n_cls, BLOCK))
    best = np.empty(BLOCK)
    arg = np.empty(BLOCK, dtype=np.int64)
    cnt = np.empty(BLOCK, dtype=np.int64)
    maxbel = np.empty(BLOCK)
    maxpl = np.empty(BLOCK)
    for p0 in range(0, n, BLOCK):
        p1 = min(p0 + BLOCK, n)
        _summarise_block(
            m[:, p0:p1],
            kk[p0:p1],
            cs[:, p0:p1],
            valid[p0:p1],
            p1 - p0,
            memb_ptr,
            memb_idx,
            inv_size,
            sing,
            omega_row,
            codes,
            by,
            bel,
            pl,
            dec,
            best,
            arg,
            cnt,
            maxbel,
            maxpl,
            o_class,
            o_bel,
            o_pl,
            o_conf,
            o_ign,
            o_conflict,
            p0,
        )
        _agreement_block(labels, o_class, o_agree, p0, p1 - p0)


@njit(cache=True, nogil=True)
def class_scores(m, memb_ptr, memb_idx, inv_size, sing, n_cls, bel, pl, betp):  # pragma: no cover
    """Bel, Pl and (unnormalised) BetP of every singleton class: (C, n) each."""
    n = m.shape[1]
    for c in range(n_cls):
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
