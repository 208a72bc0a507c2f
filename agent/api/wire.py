"""What both ends of the status API agree on, in a module that costs nothing to import.

The client (``secprof status``) imports only this, never :mod:`agent.api.schema`, which pulls in
the reconcile pipeline to build the JSON it describes.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text exposition 0.0.4

# How long POST /v1/reconcile and /v1/reload wait for the worker, unless ?timeout= says otherwise.
DEFAULT_WAIT_S = 60.0
MAX_WAIT_S = 600.0
