"""Production: runs, recorded outputs and provenance shared by notebooks, CLI and dashboards."""

from mus_lab.production._records import RECORD_MIMETYPE, read_records, record

__all__ = ["RECORD_MIMETYPE", "read_records", "record"]
