"""Frames of discernment and mass functions held as arrays over bit-mask focal sets.

A :class:`Frame` is the ordered tuple of class codes being discerned; bit ``i`` of a focal
set's mask stands for ``frame.classes[i]``, so ``{water, wetland}`` is one integer and set
operations are ``&`` and ``|``. A :class:`MassFunction` holds one mass per focal set and pixel:
``values[k, ...]`` is the mass of ``focal[k]``. Focal sets come first (like the ``class`` axis of
a probability cube) so that each set's masses are one contiguous plane the kernels stream
through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mus_lab.errors import MassFunctionError

__all__ = ["MAX_CLASSES", "NODATA", "UNDECIDED", "Frame", "MassFunction"]

#: Label of pixels where the sources tie (no single class wins).
UNDECIDED = 255
#: Label of pixels no source covers.
NODATA = 0
#: Bit masks are int64: at most 62 classes (bit 63 is the sign).
MAX_CLASSES = 62


@dataclass(frozen=True)
class Frame:
    """The classes a fusion discerns (its frame of discernment), in a fixed order.

    Parameters
    ----------
    classes
        Class codes (1-254: 0 means no data and 255 undecided in the fused map).
    names
        One name per class (defaults to the codes as text).

    Raises
    ------
    MassFunctionError
        No class, repeated codes, codes outside 1-254, more than 62 classes, or not one name
        per class.

    Example
    -------
    >>> frame = Frame((4, 5, 6), ("water", "wetland", "urban"))
    >>> frame.mask(("water", "wetland")), frame.label(frame.mask((4, 5)))
    (3, 'water|wetland')
    """

    classes: tuple[int, ...]
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        codes = tuple(int(c) for c in self.classes)
        if not codes:
            raise MassFunctionError("A frame needs at least one class: give the class codes.")
        if len(set(codes)) != len(codes):
            raise MassFunctionError(f"Duplicate class codes in the frame {list(codes)}.")
        bad = [c for c in codes if not NODATA < c < UNDECIDED]
        if bad:
            raise MassFunctionError(
                f"Class codes {bad} are outside 1-254 (0 is no data, 255 undecided): recode them."
            )
        if len(codes) > MAX_CLASSES:
            raise MassFunctionError(
                f"{len(codes)} classes: a frame holds at most {MAX_CLASSES}; merge classes first."
            )
        names = tuple(str(n) for n in self.names) if self.names else tuple(map(str, codes))
        if len(names) != len(codes):
            raise MassFunctionError(f"{len(names)} names for {len(codes)} classes: one each.")
        object.__setattr__(self, "classes", codes)
        object.__setattr__(self, "names", names)

    @classmethod
    def from_legend(cls, legend: Mapping[int, str]) -> Frame:
        """A frame from a ``{code: name}`` legend (e.g. ``Scenario.legend``), codes sorted.

        Parameters
        ----------
        legend
            Class code -> name.

        Returns
        -------
        Frame

        Raises
        ------
        MassFunctionError
            As :class:`Frame` (e.g. codes outside 1-254).
        """
        codes = sorted(int(c) for c in legend)
        return cls(tuple(codes), tuple(str(legend[c]) for c in codes))

    @property
    def size(self) -> int:
        return len(self.classes)

    @property
    def omega(self) -> int:
        """Mask of the whole frame (total ignorance)."""
        return (1 << self.size) - 1

    @property
    def legend(self) -> dict[int, str]:
        return dict(zip(self.classes, self.names, strict=True))

    def index(self, member: int | str) -> int:
        """Bit position of a class given by code or name.

        Parameters
        ----------
        member
            Class code (int) or name (str).

        Returns
        -------
        int

        Raises
        ------
        MassFunctionError
            No such class in the frame.
        """
        if isinstance(member, str):
            if member in self.names:
                return self.names.index(member)
            raise MassFunctionError(f"No class named {member!r} in the frame {list(self.names)}.")
        code = int(member)
        if code not in self.classes:
            raise MassFunctionError(f"Class {code} is not in the frame {list(self.classes)}.")
        return self.classes.index(code)

    def mask(self, members: int | str | Iterable[int | str]) -> int:
        """Bit mask of a set of classes (codes or names); a single code means a singleton.

        Parameters
        ----------
        members
            One member or several, each as :meth:`index` takes it.

        Returns
        -------
        int
            Bit ``i`` set for ``classes[i]``.

        Raises
        ------
        MassFunctionError
            As :meth:`index`.
        """
        if isinstance(members, int | str | np.integer):
            members = (members,)
        out = 0
        for m in members:
            out |= 1 << self.index(m)
        return out

    def members(self, mask: int) -> tuple[int, ...]:
        """Class codes in a mask (the inverse of :meth:`mask`).

        Parameters
        ----------
        mask
            A set as :meth:`mask` makes it.

        Returns
        -------
        tuple of int
            Codes, in frame order.
        """
        return tuple(c for i, c in enumerate(self.classes) if (int(mask) >> i) & 1)

    def label(self, mask: int) -> str:
        """Readable name of a focal set.

        Parameters
        ----------
        mask
            Focal-set bit mask.

        Returns
        -------
        str
            ``'water|wetland'``, ``'*'`` (the frame), ``'{}'`` (the empty set).
        """
        mask = int(mask)
        if mask == 0:
            return "{}"
        if mask == self.omega and self.size > 1:
            return "*"
        return "|".join(n for i, n in enumerate(self.names) if (mask >> i) & 1)

    def check_masks(self, focal: Iterable[int]) -> tuple[int, ...]:
        """Validate focal-set masks: unique and inside the frame.

        Parameters
        ----------
        focal
            Bit masks.

        Returns
        -------
        tuple of int
            The masks.

        Raises
        ------
        MassFunctionError
            A mask repeats or names classes outside the frame.
        """
        masks = tuple(int(f) for f in focal)
        if len(set(masks)) != len(masks):
            raise MassFunctionError(f"Focal sets repeat: {[self.label(m) for m in masks]}.")
        outside = [m for m in masks if m < 0 or m & ~self.omega]
        if outside:
            raise MassFunctionError(
                f"Focal-set masks {outside} name classes outside the frame of {self.size} classes."
            )
        return masks


def popcount(mask: int) -> int:
    return int(mask).bit_count()


def sort_masks(masks: Iterable[int]) -> tuple[int, ...]:
    """Unique masks, empty set first, then by size and mask (singletons before compounds)."""
    return tuple(sorted(set(int(m) for m in masks), key=lambda m: (popcount(m), m)))


@dataclass(frozen=True, eq=False)
class MassFunction:
    """Masses of focal sets, for one pixel or an array of pixels.

    Parameters
    ----------
    frame
        The classes discerned.
    focal
        Bit masks of the focal sets (see :meth:`Frame.mask`); ``0`` is the empty set.
    values
        ``values[k, ...]`` is the mass of ``focal[k]`` (trailing dims: pixels, any shape).

    Raises
    ------
    MassFunctionError
        Focal sets repeat or leave the frame, or ``values`` has not one row per focal set.

    Example
    -------
    >>> frame = Frame((1, 2, 3), ("a", "b", "c"))
    >>> m = MassFunction.from_dict(frame, {"a": 0.6, ("a", "b"): 0.3, frame.classes: 0.1})
    >>> round(float(m.mass("a")), 2), m.shape
    (0.6, ())
    """

    frame: Frame
    focal: tuple[int, ...]
    values: np.ndarray

    def __post_init__(self) -> None:
        focal = self.frame.check_masks(self.focal)
        values = np.asarray(self.values, dtype="float64")
        if values.ndim == 0 or values.shape[0] != len(focal):
            raise MassFunctionError(
                f"values must have one row per focal set ({len(focal)}), got shape {values.shape}."
            )
        object.__setattr__(self, "focal", focal)
        object.__setattr__(self, "values", values)

    @classmethod
    def from_dict(cls, frame: Frame, masses: Mapping[Any, Any]) -> MassFunction:
        """Build from ``{set: mass}``: a set is a class code or name, or an iterable of them.

        Parameters
        ----------
        frame
            The classes.
        masses
            ``{set: mass}``; masses are scalars or arrays of one shape (one per pixel).

        Returns
        -------
        MassFunction
            Checked: masses not negative and summing to 1 (within 1e-9).

        Raises
        ------
        MassFunctionError
            Negative masses, masses not summing to 1, or classes outside the frame.
        """
        focal: dict[int, Any] = {}
        for key, value in masses.items():
            mask = frame.mask(key)
            focal[mask] = focal.get(mask, 0.0) + np.asarray(value, dtype="float64")
        arrays = np.broadcast_arrays(*focal.values())
        m = cls(frame, tuple(focal), np.stack(arrays))
        m.check()
        return m

    @classmethod
    def vacuous(cls, frame: Frame, shape: tuple[int, ...] = ()) -> MassFunction:
        """Total ignorance: all mass on the whole frame.

        Parameters
        ----------
        frame
            The classes.
        shape
            Pixel shape.

        Returns
        -------
        MassFunction
        """
        return cls(frame, (frame.omega,), np.ones((1, *shape)))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[1:])

    def mass(self, members: int | str | Iterable[int | str]) -> np.ndarray:
        """Mass of one set (zero when it is not a focal set).

        Parameters
        ----------
        members
            The set: a class code or name, or an iterable of them.

        Returns
        -------
        numpy.ndarray
            Per pixel.

        Raises
        ------
        MassFunctionError
            A member is not in the frame.
        """
        mask = self.frame.mask(members)
        if mask in self.focal:
            return self.values[self.focal.index(mask)]
        return np.zeros(self.shape)

    def mass_of_mask(self, mask: int) -> np.ndarray:
        """:meth:`mass` of a set given as a bit mask (zero when it is not a focal set).

        Parameters
        ----------
        mask
            ``frame.mask(...)`` of the set.

        Returns
        -------
        numpy.ndarray
            Its mass at each pixel.
        """
        if int(mask) in self.focal:
            return self.values[self.focal.index(int(mask))]
        return np.zeros(self.shape)

    def to_dict(self, index: tuple[int, ...] = (), *, tol: float = 0.0) -> dict[str, float]:
        """Masses of one pixel by readable set name.

        Parameters
        ----------
        index
            The pixel's index (default: the first pixel).
        tol
            Masses at or below it are left out.

        Returns
        -------
        dict
            ``{label: mass}``, labels as :meth:`Frame.label`.
        """
        flat = self.values.reshape(len(self.focal), -1)
        col = flat[:, int(np.ravel_multi_index(index, self.shape))] if index else flat[:, 0]
        return {
            self.frame.label(f): float(v)
            for f, v in zip(self.focal, col, strict=True)
            if abs(v) > tol
        }

    def check(self, *, atol: float = 1e-9) -> MassFunction:
        """Check that masses are >= 0 and sum to 1 (NaN = no data).

        Parameters
        ----------
        atol
            Tolerance.

        Returns
        -------
        MassFunction
            Itself.

        Raises
        ------
        MassFunctionError
            Negative masses, or masses not summing to 1.
        """
        v = self.values
        finite = np.isfinite(v).all(axis=0)
        if (v[:, finite] < -atol).any():
            raise MassFunctionError("Negative masses: each mass must be between 0 and 1.")
        total = v[:, finite].sum(axis=0)
        if total.size and np.abs(total - 1).max() > atol:
            worst = float(total[np.argmax(np.abs(total - 1))])
            raise MassFunctionError(
                f"Masses sum to {worst:.6g}, not 1: normalise them (or put the rest on the frame)."
            )
        return self

    def reshape(self, n: int) -> np.ndarray:
        """Values as a C-contiguous ``(n_focal, n_pixels)`` float64 array.

        Parameters
        ----------
        n
            Number of pixels.

        Returns
        -------
        numpy.ndarray
        """
        return np.ascontiguousarray(self.values.reshape(len(self.focal), n))
