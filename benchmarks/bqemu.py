"""bqemulator outside pytest: an in-process BigQuery emulator for the benchmarks.

The same start as the tests' ``emulator`` fixture (tests/support/warehouses.py): the
emulator runs on its own thread, in memory, on free ports, without DuckDB's spatial
extension (GEOGRAPHY needs a download; bggscore uses none).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def emulator() -> Iterator[Any]:
    """A running emulator; yields ``(rest_url, project_id)`` as an object with those names."""
    import logging
    import warnings
    from types import SimpleNamespace

    import structlog
    from bqemulator.config import LogLevel, PersistenceMode, Settings
    from bqemulator.storage.engine import DuckDBEngine
    from bqemulator.testing._thread_runner import ThreadedEmulator

    real_spatial = DuckDBEngine._load_spatial
    DuckDBEngine._load_spatial = lambda self: None  # type: ignore[method-assign]
    settings = Settings(
        persistence_mode=PersistenceMode.EPHEMERAL,
        rest_host="127.0.0.1",
        rest_port=0,
        grpc_host="127.0.0.1",
        grpc_port=0,
        log_level=LogLevel.ERROR,
    )
    # the emulator's own chatter (its DuckDB copies Arrow results; debug lines at start)
    warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    threaded = ThreadedEmulator(settings)
    try:
        threaded.start()
        yield SimpleNamespace(
            rest_url=threaded.server.rest_url, project_id=settings.default_project_id
        )
    finally:
        threaded.stop()
        DuckDBEngine._load_spatial = real_spatial  # type: ignore[method-assign]


def client(endpoint: Any) -> Any:
    """A real google-cloud-bigquery client talking to the emulator."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=endpoint.project_id,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint.rest_url),
    )
