"""The lab's processes as pygeoapi processors and as pywps processes.

Both adapters call :func:`mus_lab.services._jobs.run_process`; they differ only in how
the engine hands over inputs and job ids. They are imported in the server's process only
(pygeoapi reads its configuration when its Flask app is imported).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from mus_lab.errors import MusLabError
from mus_lab.services._jobs import PROCESSES, Job, ProcessConfig, ProcessSpec, run_process

__all__ = ["CONFIG_ENV", "URL_ENV", "pygeoapi_resources", "wps_processes"]

#: The JSON file of the server's :class:`ProcessConfig` (set by the server for itself).
CONFIG_ENV = "MUS_LAB_PROCESSES_CONFIG"
#: The server's root URL (for the results' ``via`` links).
URL_ENV = "MUS_LAB_PROCESSES_URL"
VERSION = "1.0.0"


def _config() -> ProcessConfig:
    return ProcessConfig.from_dict(json.loads(Path(os.environ[CONFIG_ENV]).read_text("utf-8")))


def _schema(several: bool) -> dict[str, Any]:
    one = {
        "oneOf": [
            {"type": "string", "format": "uri"},
            {"type": "object", "description": "a STAC item"},
        ]
    }
    return {"type": "array", "items": one, "minItems": 1} if several else one


def _metadata(spec: ProcessSpec) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for name, (text, required, several) in spec.inputs.items():
        plain = name in ("rule", "assets")
        inputs[name] = {
            "title": name,
            "description": text,
            "schema": {"type": "string"} if plain else _schema(several),
            "minOccurs": 1 if required else 0,
            "maxOccurs": 1,
        }
    return {
        "version": VERSION,
        "id": spec.id,
        "title": {"en": spec.title},
        "description": {"en": spec.description},
        "jobControlOptions": ["sync-execute", "async-execute"],
        "keywords": ["mus_lab", spec.id],
        "links": [],
        "inputs": inputs,
        "outputs": {
            "result": {
                "title": "Published STAC items",
                "description": "collection, items (with processing:lineage) and stac_api",
                "schema": {"type": "object", "contentMediaType": "application/json"},
            }
        },
        "example": {"inputs": {}},
    }


# -- pygeoapi --------------------------------------------------------------------------
def _processor(spec: ProcessSpec) -> type:
    from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

    class Processor(BaseProcessor):  # type: ignore[misc]
        def __init__(self, processor_def: dict[str, Any]) -> None:
            super().__init__(processor_def, _metadata(spec))

        def set_job_id(self, job_id: str) -> None:
            self.job_id = job_id

        def execute(self, data: dict[str, Any], outputs: Any = None) -> tuple[str, Any]:
            job_id = getattr(self, "job_id", None) or "sync"
            root = os.environ.get(URL_ENV, "")
            job = Job(job_id, "ogcapi-processes", f"{root}/jobs/{job_id}" if root else None)
            try:
                result = run_process(spec.id, data, _config(), job)
            except MusLabError as exc:
                raise ProcessorExecuteError(" ".join(str(exc).split())) from None
            return "application/json", result

        def __repr__(self) -> str:
            return f"<mus_lab processor {spec.id}>"

    Processor.__name__ = Processor.__qualname__ = (
        "".join(w.capitalize() for w in spec.id.split("-")) + "Processor"
    )
    return Processor


def __getattr__(name: str) -> Any:
    """``FloodMapProcessor``... : the classes pygeoapi's configuration names."""
    for spec in PROCESSES.values():
        cls_name = "".join(w.capitalize() for w in spec.id.split("-")) + "Processor"
        if name == cls_name:
            cls = _processor(spec)
            globals()[name] = cls
            return cls
    raise AttributeError(name)


def pygeoapi_resources() -> dict[str, Any]:
    """The ``resources`` section of pygeoapi's configuration: one process each.

    Returns
    -------
    dict
    """
    return {
        spec.id: {
            "type": "process",
            "processor": {
                "name": f"{__name__}."
                + "".join(w.capitalize() for w in spec.id.split("-"))
                + "Processor"
            },
        }
        for spec in PROCESSES.values()
    }


# -- pywps -----------------------------------------------------------------------------
def _threads_for_async() -> None:
    """pywps runs an asynchronous job in a forked process; here, in a thread.

    A fork of the threaded server (GDAL, Dask, the HTTP threads) can hang on a lock some
    other thread held; a thread shares the server's Dask client and leaves no process.
    """
    import pywps.processing.basic as basic

    def start(self: Any) -> None:
        method = getattr(self.job.process, self.job.method)
        threading.Thread(
            target=method, args=(self.job.wps_request, self.job.wps_response), daemon=True
        ).start()

    basic.MultiProcessing.start = start


def wps_processes() -> list[Any]:
    """The processes as pywps ``Process`` objects (store and status supported).

    Returns
    -------
    list of pywps.Process
    """
    from pywps import ComplexOutput, Format, LiteralInput, Process
    from pywps.app.exceptions import ProcessError

    _threads_for_async()

    def handler_for(spec: ProcessSpec) -> Any:
        def handler(request: Any, response: Any) -> Any:
            inputs: dict[str, Any] = {}
            for name, (_, _, several) in spec.inputs.items():
                values = [i.data for i in request.inputs.get(name, [])]
                if values:
                    inputs[name] = values if several else values[0]
            job_id = str(response.uuid)
            root = os.environ.get(URL_ENV, "")
            status = f"{root}/wps/outputs/{job_id}.xml" if root else None
            response.update_status("running", 10)
            try:
                result = run_process(spec.id, inputs, _config(), Job(job_id, "wps", status))
            except MusLabError as exc:
                raise ProcessError(" ".join(str(exc).split())[:290]) from None
            response.outputs["result"].data = json.dumps(result)
            return response

        return handler

    processes = []
    for spec in PROCESSES.values():
        inputs = [
            LiteralInput(
                name,
                name,
                abstract=text,
                data_type="string",
                min_occurs=1 if required else 0,
                max_occurs=20 if several else 1,
            )
            for name, (text, required, several) in spec.inputs.items()
        ]
        outputs = [
            ComplexOutput(
                "result",
                "Published STAC items",
                abstract="collection, items (with processing:lineage) and stac_api",
                supported_formats=[Format("application/json")],
            )
        ]
        processes.append(
            Process(
                handler_for(spec),
                identifier=spec.id,
                title=spec.title,
                abstract=spec.description,
                version=VERSION,
                inputs=inputs,
                outputs=outputs,
                store_supported=True,
                status_supported=True,
            )
        )
    return processes
