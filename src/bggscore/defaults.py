"""Defaults shared by settings and code paths that must not import pydantic."""

# One DuckDB row group: a transaction appending at least this many rows to a table has
# them written straight to the database file, not to the log and again at a checkpoint.
DEFAULT_BATCH_SIZE = 122_880
