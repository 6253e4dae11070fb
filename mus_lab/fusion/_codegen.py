"""Two-source kernels generated for one layout of focal sets: straight-line code per pixel.

The general kernel (:func:`mus_lab.fusion._kernels.fuse2`) reads its focal-set algebra from
integer tables, so it must walk the pixels in blocks and stream every pair of focal sets over a
block (a load and a store of the combined row per pair). Here the tables are turned into Python
source once per layout (rule, the two sources' focal sets, the classes, the dtype): each pixel
loads its 2 x F masses into registers, the combined sets, the conflict, the decision and the
outputs are expressions of them, and each output is written once. The pixel loop has no branch
(choices are selects), so LLVM vectorises it across pixels. The few pixels that need one (ties,
no data, Dempster's total conflict) are flagged and redone by a scalar loop afterwards.

The generated code performs the general kernel's operations in the same order and the same
precision, so its outputs are bit for bit the same (tested).

Generated modules are written once into a cache folder (``MUS_LAB_KERNEL_CACHE``, else
``$XDG_CACHE_HOME/mus_lab/kernels``, else a temporary folder) and imported from there, so numba's
own on-disk cache keeps the compiled code between processes (a Dask worker compiles a layout
once, or loads it).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from mus_lab.fusion import _kernels as K

__all__ = ["MIN_PIXELS", "OUTPUTS", "generated_fuse2", "kernel_source", "supported"]

#: The kernel's outputs: the rows of its uint8 array, then those of its float32 array.
OUTPUTS = (
    "fused_class",
    "agreement",
    "belief",
    "plausibility",
    "conflict",
    "ignorance",
    "confidence",
)

#: Chunks under 512 x 512 pixels use the general kernel: compiling a new layout
#: (about a second) would cost more than it saves.
MIN_PIXELS = 1 << 18
#: Pixels per block: the block's inputs and outputs (about 100 B/px) stay in the L1/L2 cache.
BLOCK = 512

_RULES = (K.RULE_DEMPSTER, K.RULE_YAGER, K.RULE_CONJ)


def _cache_dir() -> Path:
    env = os.environ.get("MUS_LAB_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mus_lab" / "kernels"


def _sum(terms: list[str]) -> str:
    """``0 + t1 + t2 ...`` left to right, as the general kernel's accumulating loops add."""
    return " + ".join(terms) if terms else "Z"


def kernel_source(
    rule: int,
    fa: tuple[int, ...],
    fb: tuple[int, ...],
    classes: tuple[int, ...],
    dtype: str,
) -> str:
    """The Python source of the kernel for one layout (see the module's docstring).

    ``fa`` and ``fb`` hold the frame and no empty set; ``rule`` is Dempster, Yager or the
    conjunctive rule; the decision is by maximum belief.
    """
    from mus_lab.fusion._rules import pair_tables

    n_cls = len(classes)
    omega = (1 << n_cls) - 1
    out_f, pt = pair_tables(rule, fa, fb, omega)
    n_out = len(out_f)
    pos = {m: t for t, m in enumerate(out_f)}
    F = f"np.{dtype}"
    IT = "np.int32" if n_cls < 31 else "np.int64"  # class bit masks
    # the combined set t: the products a_i * b_j meeting in it, i outer and j inner
    terms: list[list[str]] = [[] for _ in range(n_out)]
    for i in range(len(fa)):
        for j in range(len(fb)):
            t = int(pt.tgt[i, j])
            if t >= 0:
                terms[t].append(f"a{i} * b{j}")
    om = pt.omega_row
    bel = [f"t{pos[1 << c]}" if (1 << c) in pos else "Z" for c in range(n_cls)]
    # rows holding each class (Pl), in row order; row membership masks (Pl of the decision)
    cls_rows = [[t for t, m in enumerate(out_f) if (m >> c) & 1] for c in range(n_cls)]

    def load(src: str, k: int, om_row: int, ind: str) -> list[str]:
        lines = [f"{ind}{src}{i} = {src.upper()}{i}[q]" for i in range(k)]
        lines.append(f"{ind}s{src} = {_sum([f'{src}{i}' for i in range(k)])}")
        lines.append(f"{ind}ok{src} = s{src} == s{src}")
        for i in range(k):
            vac = "ONE" if i == om_row else "Z"
            lines.append(f"{ind}{src}{i} = {src}{i} if ok{src} else {vac}")
        lines.append(f"{ind}s{src} = s{src} if ok{src} else ONE")
        return lines

    def combine(ind: str) -> list[str]:
        lines = load("a", len(fa), pt.omega_a, ind) + load("b", len(fb), pt.omega_b, ind)
        lines.append(f"{ind}valid = oka | okb")
        lines += [f"{ind}t{t} = {_sum(terms[t])}" for t in range(n_out)]
        lines.append(f"{ind}norm = {_sum([f't{t}' for t in range(n_out)])}")
        lines.append(f"{ind}x = sa * sb - norm")
        lines.append(f"{ind}kk = x if x > Z else Z")
        if rule == K.RULE_DEMPSTER:
            lines.append(f"{ind}tc = norm <= EPS")
            lines.append(f"{ind}s = Z if tc else ONE / norm")
        else:
            lines.append(f"{ind}tc = False")
            lines.append(f"{ind}s = ONE")
            if rule == K.RULE_YAGER:
                lines.append(f"{ind}t{om} = t{om} + kk")
        # maximum belief, first class wins among equals; then how many classes tie with it
        lines.append(f"{ind}best = {bel[0]}")
        lines.append(f"{ind}arg = 0")
        lines.append(f"{ind}dm = DM0")
        lines.append(f"{ind}code = C0")
        for c in range(1, n_cls):
            lines.append(f"{ind}gt = {bel[c]} > best")
            lines.append(f"{ind}best = {bel[c]} if gt else best")
            lines.append(f"{ind}arg = {c} if gt else arg")
            lines.append(f"{ind}dm = DM{c} if gt else dm")
            lines.append(f"{ind}code = C{c} if gt else code")
        lines.append(f"{ind}thr = {F}(best * (1.0 - TIE))")
        lines.append(f"{ind}cnt = " + " + ".join(f"np.int32({b} >= thr)" for b in bel))
        pl = [f"(np.float64(t{t}) if M{t} & dm else 0.0)" for t in range(n_out) if out_f[t]]
        lines.append(f"{ind}pl = 0.0 + " + " + ".join(pl))
        return lines

    main = [
        *combine("            "),
        f"            O[3 * BS + q] = t{om} * s",
        "            O[q] = best * s",
        "            O[BS + q] = pl * s",
        "            O[2 * BS + q] = kk",
        "            O[4 * BS + q] = best",
        "            U8[q] = code",
        "            e0 = np.uint8(L[q] == code)",
        "            e1 = np.uint8(L[BS + q] == code)",
        "            okc = np.uint8((code != 0) & (code != U))",
        "            U8[BS + q] = okc * (e0 * e1 + np.uint8(3) * e0 * (1 - e1)"
        " + np.uint8(2) * e1 * (1 - e0))",
        "            odd = (cnt > 1) | (not valid) | tc",
        "            U8[2 * BS + q] = odd",
        "            any_odd |= odd",
    ]
    fix = [
        "            if not U8[2 * BS + q]:",
        "                continue",
        *combine("            "),
        "            n_total += tc & valid",
        "            if cnt > 1:",
        "                top = 0.0",
        *[
            f"                top = max(top, {_sum([f'np.float64(t{t})' for t in rows])})"
            if rows
            else "                top = max(top, 0.0)"
            for rows in cls_rows
        ],
        "                U8[q] = U",
        "                O[BS + q] = top * s",
        "                O[4 * BS + q] = Z",
        "            if not valid:",
        "                U8[q] = 0",
        *[f"                O[{k} * BS + q] = NAN" for k in range(5)],
        "            elif tc & vac:",
        "                U8[q] = U",
        "                O[q] = Z",
        "                O[BS + q] = ONE",
        "                O[3 * BS + q] = ONE",
        "                O[4 * BS + q] = Z",
        "            f = U8[q]",
        "            e0 = np.uint8(L[q] == f)",
        "            e1 = np.uint8(L[BS + q] == f)",
        "            okc = np.uint8((f != 0) & (f != U))",
        "            U8[BS + q] = okc * (e0 * e1 + np.uint8(3) * e0 * (1 - e1)"
        " + np.uint8(2) * e1 * (1 - e0))",
    ]
    src = [
        '"""Generated by mus_lab.fusion._codegen: do not edit."""',
        "import numpy as np",
        "from numba import njit",
        "",
        f"BS = {BLOCK}",
        "",
        "",
        '@njit(cache=True, nogil=True, inline="always")',
        "def _copy_in(src, k, dst, p0, bs):",
        "    for i in range(src.shape[0]):",
        "        row = src[i, p0 : p0 + bs]",
        "        out = dst[(k + i) * BS : (k + i) * BS + bs]",
        "        for q in range(bs):",
        "            out[q] = row[q]",
        "",
        "",
        '@njit(cache=True, nogil=True, inline="always")',
        "def _copy_out(src, dst, p0, bs):",
        "    for i in range(dst.shape[0]):",
        "        row = dst[i, p0 : p0 + bs]",
        "        inp = src[i * BS : i * BS + bs]",
        "        for q in range(bs):",
        "            row[q] = inp[q]",
        "",
        "",
        '@njit(cache=True, nogil=True, error_model="numpy")',
        "def fuse2(a, b, labels, tie, eps, tc_flag, of, ou):",
        "    n = a.shape[1]",
        f"    Z = {F}(0.0)",
        f"    ONE = {F}(1.0)",
        f"    NAN = {F}(np.nan)",
        f"    EPS = {F}(eps)",
        "    TIE = tie",
        "    vac = not tc_flag",
        *[f"    C{c} = np.uint8({code})" for c, code in enumerate(classes)],
        "    U = np.uint8(255)",
        *[f"    DM{c} = {IT}({1 << c})" for c in range(n_cls)],
        *[f"    M{t} = {IT}({m})" for t, m in enumerate(out_f)],
        "    L = np.empty(2 * BS, np.uint8)",
        "    O = np.empty(5 * BS, of.dtype)",
        "    U8 = np.empty(3 * BS, np.uint8)",
        "    n_total = 0",
        "    for p0 in range(0, n, BS):",
        "        bs = min(BS, n - p0)",
        *[f"        A{i} = a[{i}, p0 : p0 + bs]" for i in range(len(fa))],
        *[f"        B{j} = b[{j}, p0 : p0 + bs]" for j in range(len(fb))],
        "        _copy_in(labels, 0, L, p0, bs)",
        "        any_odd = False",
        "        for q in range(bs):",
        *main,
        "        if any_odd:",
        "            for q in range(bs):",
        *["    " + line for line in fix],
        "        _copy_out(O, of, p0, bs)",
        "        _copy_out(U8[: 2 * BS], ou, p0, bs)",
        "    return n_total",
        "",
    ]
    return "\n".join(src)


def _import(source: str) -> Callable[..., int]:
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"mus_lab_fuse2_{digest}"
    folder = _cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.py"
        if not path.exists() or path.read_text() != source:
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                fh.write(source)
            os.replace(tmp, path)  # atomic: workers writing the same layout at once agree
    except OSError:  # a read-only home: numba then compiles in every process
        folder = Path(tempfile.gettempdir()) / f"mus_lab-kernels-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.py"
        path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's cache finds the function's globals by module name
    spec.loader.exec_module(module)
    return module.fuse2  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=64)
def generated_fuse2(
    rule: int,
    fa: tuple[int, ...],
    fb: tuple[int, ...],
    classes: tuple[int, ...],
    dtype: str,
) -> Callable[..., int]:
    """The compiled kernel for one layout (generated, written and imported once per process).

    Call it as ``kernel(a, b, labels, tie, eps, tc_flag, flag, *outputs)`` with ``a``, ``b``
    ``(F, n)`` masses of ``dtype`` (NaN: no data), ``labels`` ``(2, n)`` uint8, ``flag`` an
    ``(n,)`` uint8 scratch and the seven :class:`~mus_lab.fusion._kernels.Outputs` arrays;
    returns how many valid pixels are in Dempster's total conflict.
    """
    if rule not in _RULES:
        raise ValueError(f"no generated kernel for rule code {rule}")
    return _import(kernel_source(rule, fa, fb, classes, dtype))


def supported(rule: int, by: int, n_pixels: int) -> bool:
    """Whether :func:`generated_fuse2` serves this call (rule, max-belief decision, size)."""
    return rule in _RULES and by == K.BY_BEL and n_pixels >= MIN_PIXELS
