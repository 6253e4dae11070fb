"""One protocol over the SAR level-1 products ard calibrates: Sentinel-1 SAFE and RCM.

:class:`SarProduct` is all that the native-geometry path of
:func:`mus_lab.ard.prepare_rcm` needs from a product: its polarisations, its digital
numbers as a lazy ``(line, pixel)`` array, their calibration to linear backscatter and the
grid of its imagery. :class:`~mus_lab.ard.SafeProduct` and :class:`~mus_lab.ard.RcmProduct`
implement it; both get :meth:`~SarProduct.calibrated` and :meth:`~SarProduct.native_geobox`
from the protocol itself (through ``_ProductMethods``), written once here over the three
product-specific methods (``imagery_href``, ``open_dn``, ``calibrate_dn``).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Protocol, runtime_checkable

import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab.errors import ARDError, MetadataError

__all__ = ["Clip", "SarProduct"]

#: What values ``<= 0`` after noise removal become: NaN, or a positive linear floor.
Clip = float | Literal["nan"]


@runtime_checkable
class SarProduct(Protocol):
    """A SAR level-1 product whose pixels ard can calibrate (Sentinel-1 SAFE, RCM).

    Implement ``name``, ``polarisations``, ``imagery_href``, ``open_dn`` and
    ``calibrate_dn``; ``calibrated`` and ``native_geobox`` follow from them (inherit
    ``mus_lab.ard._sar_product._ProductMethods`` to get them written once).

    Parameters
    ----------
    None
        A structural type: any object with these members is a ``SarProduct``
        (``isinstance`` checks the members' presence).

    Raises
    ------
    None
        Its methods raise :class:`~mus_lab.errors.MetadataError` for an absent polarisation
        or calibration, :class:`~mus_lab.errors.ProductFileError` for a missing file and
        :class:`~mus_lab.errors.ARDError` for imagery without CRS (``native_geobox``).

    Examples
    --------
    >>> from mus_lab import catalog
    >>> from mus_lab.ard import SarProduct, open_rcm
    >>> item = catalog.search(tiny.catalog_path, collections="rcm-grd").items[0]
    >>> prod = open_rcm(item.assets["product"].get_absolute_href())
    >>> isinstance(prod, SarProduct), prod.polarisations
    (True, ('VV', 'VH'))
    >>> prod.calibrated("VV").dtype
    dtype('float32')
    """

    @property
    def name(self) -> str:
        """The product's name (SAFE name, RCM folder name)."""
        ...

    @property
    def polarisations(self) -> tuple[str, ...]:
        """Polarisations in the product, upper case (``("VV", "VH")``)."""
        ...

    def imagery_href(self, polarisation: str) -> str:
        """A path GDAL opens for the imagery of ``polarisation``.

        Parameters
        ----------
        polarisation : str
            The band whose file to locate: ``"VV"`` and ``"vv"`` alike.

        Returns
        -------
        str
            A file path, or a ``/vsizip/`` path for imagery inside a zip.

        Raises
        ------
        MetadataError
            ``polarisation`` is not one of :attr:`polarisations`.
        ProductFileError
            The file named by the product's metadata is not there.
        """
        ...

    def open_dn(self, polarisation: str, *, chunks: int | None = None) -> xr.DataArray:
        """The digital numbers of ``polarisation``: lazy ``(line, pixel)``, native dtype.

        Parameters
        ----------
        polarisation : str
            The band to read, one of :attr:`polarisations` in any case.
        chunks : int, optional
            Block size in pixels of the lazy read (default: the ``chunk_size`` setting).

        Returns
        -------
        xarray.DataArray
            Dask-backed ``(line, pixel)`` DN, the dtype of the file (``uint16`` for GRD).

        Raises
        ------
        MetadataError
            The product has no such polarisation, or the imagery size disagrees with the
            product's metadata.
        ProductFileError
            The imagery file is missing.
        """
        ...

    def calibrate_dn(
        self, dn: Any, polarisation: str, *, to: str, remove_noise: bool, clip: Clip
    ) -> Any:
        """``dn`` (as :meth:`open_dn` gives it) calibrated to linear ``to``, float32, lazy.

        Parameters
        ----------
        dn : numpy.ndarray, dask.array.Array or xarray.DataArray
            Digital numbers on the product's full ``(line, pixel)`` raster.
        polarisation : str
            The polarisation ``dn`` belongs to (selects the LUT and noise file).
        to : {"sigma0", "beta0", "gamma0"}
            The backscatter convention (Sentinel-1 also takes ``"dn"``).
        remove_noise : bool
            Subtract the product's noise levels before calibration.
        clip : float or "nan"
            What values ``<= 0`` after noise removal become: NaN or this linear floor.

        Returns
        -------
        same type as ``dn``
            Linear backscatter, float32, lazy when ``dn`` is.

        Raises
        ------
        MetadataError
            Unknown ``to``, absent calibration or noise level, or a bad ``clip``.
        ProductFileError
            A LUT or the noise file is missing.
        """
        ...

    def calibrated(
        self,
        polarisation: str,
        *,
        to: str = "sigma0",
        remove_noise: bool = True,
        clip: Clip = "nan",
        chunks: int | None = None,
    ) -> xr.DataArray:
        """Lazy calibrated backscatter of ``polarisation`` (linear power, float32).

        Parameters
        ----------
        polarisation : str
            The band to calibrate, one of :attr:`polarisations` in any case.
        to : {"sigma0", "beta0", "gamma0"}, optional
            Which backscatter convention (Sentinel-1 also takes ``"dn"``).
        remove_noise : bool, optional
            Subtract the product's noise levels (default True).
        clip : float or "nan", optional
            What values ``<= 0`` after noise removal become: NaN (default) or this floor.
        chunks : int, optional
            Block size of the imagery read (default: the ``chunk_size`` setting).

        Returns
        -------
        xarray.DataArray
            float32 ``(line, pixel)``, dask-backed, ``polarisation`` in its attributes.

        Raises
        ------
        MetadataError
            Unknown polarisation or calibration, or a bad ``clip``.
        ProductFileError
            The imagery, a LUT or the noise file is missing.
        """
        pol = _check_pol(polarisation, self.polarisations, self.name)
        dn = self.open_dn(pol, chunks=chunks)
        out = self.calibrate_dn(dn, pol, to=to, remove_noise=remove_noise, clip=clip)
        return out.assign_attrs(polarisation=pol)  # type: ignore[no-any-return]

    def native_geobox(self, polarisation: str) -> GeoBox:
        """The pixel grid of the imagery of ``polarisation`` (geocoded products only).

        Parameters
        ----------
        polarisation : str
            The band whose grid to read (any case).

        Returns
        -------
        odc.geo.geobox.GeoBox
            The imagery's shape, transform and CRS.

        Raises
        ------
        MetadataError
            No band ``polarisation`` in the product.
        ProductFileError
            Its imagery file is missing.
        ARDError
            The imagery carries no CRS (slant or ground range): terrain-correct it first.
        """
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        href = self.imagery_href(_check_pol(polarisation, self.polarisations, self.name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(href)
        with src:
            if src.crs is None:
                raise ARDError(
                    f"{href} carries no CRS: calibrating onto a grid needs a geocoded product "
                    "(e.g. RCM GCD/GCC); terrain-correct slant or ground-range products first."
                )
            return GeoBox(src.shape, src.transform, src.crs)


def _check_pol(polarisation: str, polarisations: tuple[str, ...], name: str) -> str:
    pol = polarisation.upper()
    if pol not in polarisations:
        raise MetadataError(f"{name} has no {pol} polarisation: choose one of {polarisations}.")
    return pol


class _ProductMethods:
    """What every :class:`SarProduct` does the same way, over its specific methods.

    ``calibrated`` and ``native_geobox`` are the protocol's own, written once there.
    """

    # Provided by the product class (declared for the type checker).
    name: Any
    polarisations: Any

    def imagery_href(self, polarisation: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def open_dn(self, polarisation: str, *, chunks: int | None = None) -> xr.DataArray:
        raise NotImplementedError  # pragma: no cover - abstract

    def calibrate_dn(
        self, dn: Any, polarisation: str, *, to: str, remove_noise: bool, clip: Clip
    ) -> Any:
        raise NotImplementedError  # pragma: no cover - abstract

    def _check_pol(self, polarisation: str) -> str:
        return _check_pol(polarisation, self.polarisations, self.name)

    calibrated = SarProduct.calibrated
    native_geobox = SarProduct.native_geobox
