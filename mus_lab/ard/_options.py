"""How ard's stage functions take their options: a frozen dataclass, or its fields as keywords.

``prepare_s2(items, options=S2Options(resampling="bilinear"))`` and
``prepare_s2(items, resampling="bilinear")`` are the same call: keywords override the
fields of ``options`` (or of the defaults), so one options object can be reused across
calls and tweaked per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any, TypeVar

from mus_lab.errors import ARDError

__all__ = ["Chunks", "with_overrides"]

#: Dask chunks of a stage: one size for ``x`` and ``y``, a mapping by dimension, or None for
#: the ``chunk_size`` setting (:func:`mus_lab.set_options`, ``MUS_LAB_CHUNK_SIZE``).
Chunks = Mapping[str, int] | int | None

OptionsT = TypeVar("OptionsT")


def with_overrides(
    cls: type[OptionsT], options: OptionsT | None, overrides: Mapping[str, Any], *, where: str
) -> OptionsT:
    """``options`` (default ``cls()``) with the fields named in ``overrides`` replaced.

    Raises
    ------
    ARDError
        ``options`` is not a ``cls`` or ``overrides`` names no field of it.
    """
    base = cls() if options is None else options
    if not isinstance(base, cls):
        raise ARDError(
            f"{where}(options=...) takes a {cls.__name__}, got {type(base).__name__}: build one "
            f"with mus_lab.ard.{cls.__name__}(...)."
        )
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ARDError(f"{where}() got unknown option(s) {unknown}: choose among {names}.")
    return replace(base, **overrides) if overrides else base  # type: ignore[type-var]


def native_chunks(chunks: Chunks) -> int:
    """One block side in pixels for reading native imagery, from a stage's ``chunks``."""
    from mus_lab._settings import resolve_chunks

    if isinstance(chunks, Mapping):
        sides = [int(chunks[d]) for d in ("y", "x") if d in chunks and int(chunks[d]) > 0]
        return resolve_chunks(max(sides) if sides else None)
    return resolve_chunks(chunks)
