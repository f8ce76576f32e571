"""`bggscore ARGS...` in a process of its own, its BigQuery client pointed at a bqemulator
REST endpoint: a second machine, for the lease tests.

    python tests/support/bq_cli.py REST_URL PROJECT ARGS...
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    url, project, *args = sys.argv[1:]
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from bggscore.warehouse.bigquery_engine import BigQueryWarehouse

    def client() -> bigquery.Client:
        return bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=url),
        )

    real_init = BigQueryWarehouse.__init__

    def init(self: BigQueryWarehouse, settings: Any, client_factory: Any = None) -> None:
        real_init(self, settings, client_factory=client)

    BigQueryWarehouse.__init__ = init  # type: ignore[method-assign]
    from bggscore.cli.main import run

    sys.argv = ["bggscore", *args]
    run()


if __name__ == "__main__":
    main()
