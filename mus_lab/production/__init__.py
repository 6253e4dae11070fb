"""Production: runs, recorded outputs and provenance shared by notebooks, CLI and dashboards."""

from mus_lab.production._demo import DemoReport, run_demo
from mus_lab.production._demo import s2_clear_ndvi_median as quicklook_ndvi
from mus_lab.production._records import RECORD_MIMETYPE, read_records, record

__all__ = ["RECORD_MIMETYPE", "DemoReport", "quicklook_ndvi", "read_records", "record", "run_demo"]
