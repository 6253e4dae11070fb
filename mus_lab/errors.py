"""One exception root for the whole package.

Every error a user can cause raises a subclass of :class:`MusLabError` whose
message says what was wrong *and* what to change. Errors from deep inside GDAL,
pystac or HTTP clients are caught at the stage boundary and re-raised as one of
these, with the original chained (``raise ... from exc``).
"""

from __future__ import annotations

__all__ = [
    "ARDError",
    "AssetError",
    "BackscatterInputError",
    "BandMismatchError",
    "CatalogError",
    "CatalogUnreachableError",
    "ChainError",
    "ComputeError",
    "CredentialsError",
    "CubeError",
    "DiskFullError",
    "EmptySearchError",
    "ExternalToolError",
    "GridMismatchError",
    "GridReprojectedWarning",
    "HarvestError",
    "InvalidBBoxError",
    "InvalidQueryError",
    "MetadataError",
    "MissingCalibrationError",
    "MissingProjectionError",
    "MusLabError",
    "MusLabWarning",
    "NoCatalogError",
    "NoSeriesFilesError",
    "NoticeError",
    "ProductContractError",
    "ProductFileError",
    "PublishError",
    "RadarGeometryError",
    "RepeatedPageWarning",
    "SampleError",
    "SeriesDateError",
    "SeriesError",
    "SeriesGridError",
    "ServiceError",
    "StepError",
    "UnknownCollectionError",
    "UnknownProviderError",
    "UnreadableRasterError",
]


class MusLabError(Exception):
    """Root of every error raised on purpose by mus_lab."""


class MusLabWarning(UserWarning):
    """Root of every warning issued by mus_lab."""


# --- catalog -----------------------------------------------------------------
class CatalogError(MusLabError):
    """Searching or reading a catalog failed."""


class CatalogUnreachableError(CatalogError):
    """The STAC API or local catalog could not be reached or opened."""


class UnknownProviderError(CatalogUnreachableError, ValueError):
    """A source is neither a known provider name, a URL nor an existing local catalog."""


class UnknownCollectionError(CatalogError):
    """A collection id is not offered by the catalog."""


class EmptySearchError(CatalogError):
    """A search matched no item."""


class InvalidBBoxError(CatalogError, ValueError):
    """A bounding box is malformed (wrong order, wrong length, out of range)."""


class InvalidQueryError(CatalogError, ValueError):
    """A datetime, CQL2 filter or other search argument cannot be understood."""


class CredentialsError(CatalogError):
    """A provider's credentials are missing, unreadable or refused (no secret is ever quoted)."""


class RepeatedPageWarning(MusLabWarning):
    """A server answered the same page token twice: paging stopped to avoid an endless loop."""


class HarvestError(CatalogError):
    """Harvesting assets into a local folder was given bad input or could not go on."""


class DiskFullError(HarvestError):
    """The disk receiving a harvest is full: free some space or harvest into another folder."""


# --- cube ----------------------------------------------------------------------
class CubeError(MusLabError):
    """Loading items into a datacube failed."""


class AssetError(CubeError):
    """An item lacks an asset (band) that was asked for."""


class MissingProjectionError(CubeError):
    """An item or asset carries no projection (proj extension) to place it on a grid."""


class GridMismatchError(CubeError, ValueError):
    """Two cubes that must share a pixel grid do not."""


class GridReprojectedWarning(MusLabWarning):
    """An input on another pixel grid was reprojected onto the first input's grid."""


class SeriesError(CubeError):
    """A user's own series of GeoTIFFs (:func:`mus_lab.cube.open_series`) cannot be opened as
    given."""


class NoSeriesFilesError(SeriesError, ValueError):
    """No file to open: an empty list, or a folder or pattern that matches no GeoTIFF."""


class UnreadableRasterError(SeriesError, OSError):
    """A file of a series is missing or is not a raster GDAL can read."""


class SeriesDateError(SeriesError, ValueError):
    """The dates of a series cannot be told: no date in a file name or band, a wrong number of
    dates given, or two files on the same day."""


class BandMismatchError(SeriesError, ValueError):
    """The files of a series do not hold the same bands (count or names), or a band asked for
    is not there."""


class SeriesGridError(SeriesError, GridMismatchError):
    """The files of a series are on different grids (another CRS, extent or resolution) and no
    reprojection was allowed, or a file has no CRS."""


# --- publish ---------------------------------------------------------------------------
class PublishError(MusLabError):
    """Writing, exporting or opening a product (COG + STAC item) failed."""


class ProductContractError(PublishError, ValueError):
    """A product (cube to write, or STAC item read) does not match its contract
    (:mod:`mus_lab.contracts`): a missing asset or variable, a wrong dtype, an unknown legend."""


# --- other stages ----------------------------------------------------------------
class SampleError(MusLabError):
    """The sample scenario generator was given impossible settings."""


class ServiceError(MusLabError):
    """A local service (the PostgreSQL cluster of ``mus_lab.services``) cannot be set up,
    started or stopped."""


class NoticeError(ServiceError):
    """An availability-notice subscription is malformed, refused (wrong or missing token) or
    its channel cannot deliver (no token or secret is ever quoted)."""


class ComputeError(MusLabError):
    """A Dask cluster (local or Gateway) could not be started or reached."""


class ARDError(MusLabError):
    """Analysis-ready data preparation failed."""


class MetadataError(ARDError, ValueError):
    """A SAR product's metadata (SAFE or RCM XML) is missing, malformed or inconsistent."""


class ProductFileError(ARDError, FileNotFoundError):
    """A file that a SAR product needs (LUT, noise, imagery, annotation) is missing."""


class MissingCalibrationError(MetadataError):
    """A SAR product (a Sentinel-1 SAFE) lacks its calibration or noise annotation: it cannot
    be calibrated; harvest the complete product first."""


class BackscatterInputError(ARDError, ValueError):
    """Backscatter of the wrong kind: digital numbers where calibrated backscatter is expected,
    or linear power where dB is expected (or the reverse). The message names the function to
    call first."""


class RadarGeometryError(ARDError, ValueError):
    """Data in radar geometry (image lines and pixels, GCPs, no CRS) where geocoded data on a
    grid is expected. The message names the function that geocodes it."""


class ExternalToolError(ARDError):
    """An external processor (Sen2Cor, MAJA) is not installed, or its run failed."""


# --- classify ----------------------------------------------------------------------------------


class ClassifyError(MusLabError):
    """Land-cover classification: samples, models, prediction or accuracy assessment."""


class ConfusionMatrixError(ClassifyError, ValueError):
    """A confusion matrix that is malformed or does not match the map's labels."""


class SamplesError(ClassifyError, ValueError):
    """Reference polygons that give no usable training sample (outside the cube, a missing
    label field, a class without any valid pixel)."""


class FeatureMismatchError(ClassifyError, ValueError):
    """A feature cube whose features (names, order, grid) do not match what a model was trained on."""


class ModelError(ClassifyError):
    """A land-cover model that cannot be built, trained, saved or loaded as asked."""


# --- fusion ------------------------------------------------------------------------------------


class FusionError(MusLabError):
    """Dempster-Shafer fusion of land-cover maps: masses, rules, inputs or outputs."""


class MassFunctionError(FusionError, ValueError):
    """A mass function is malformed: negative masses, focal sets outside the frame, no unit sum."""


class LegendMismatchError(FusionError, ValueError):
    """Sources to fuse do not share one class legend (frame of discernment)."""


class UnknownRuleError(FusionError, ValueError):
    """A combination rule name is not registered."""


class TotalConflictError(FusionError):
    """Dempster's rule met total conflict (K = 1): the sources contradict each other entirely."""


# --- flood -----------------------------------------------------------------------------------


class FloodError(MusLabError):
    """Flood mapping, time-series flood products or flood risk failed."""


class FloodInputError(FloodError, ValueError):
    """A SAR, reference, DEM, optical, land-cover or zones input cannot be used as given."""


class NoBimodalTileError(FloodError):
    """No tile of a SAR image has a bimodal (water / land) histogram: no threshold can be drawn."""


class RiskConfigError(FloodError, ValueError):
    """A flood-risk configuration (YAML or mapping) is malformed."""


class LinearBackscatterWarning(MusLabWarning):
    """Backscatter given as dB looks linear (power): it was converted to dB."""


# --- production and user faces (notebook runs, dashboards) -------------------------------------


class ProductionError(MusLabError):
    """A batch run of notebooks or a dashboard launch could not be done."""


class NotebookParameterError(ProductionError, ValueError):
    """A notebook parameter is unknown or of the wrong type (found before running anything)."""


class ChainError(ProductionError, ValueError):
    """A chain file is wrong (unknown step, missing option, cycle, uncovered tile) or a run
    cannot be found; nothing has run."""


class StepError(ProductionError):
    """A step of a production chain failed on a tile (the registry keeps the message)."""


class NoCatalogError(ProductionError, LookupError):
    """A notebook was given no catalog to work on (no ``catalog`` parameter, no
    ``MUS_LAB_CATALOG``)."""


class NotebookNotFoundError(ProductionError, FileNotFoundError):
    """A notebook to run (or the repository's notebooks/apps folder) does not exist."""


# --- fusion: land-cover products read from a catalog -------------------------------------------


class MissingLandCoverError(FusionError, LookupError):
    """A land-cover product to fuse (map, probabilities, confusion matrix) is not in the catalog."""
