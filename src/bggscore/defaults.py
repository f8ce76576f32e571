"""Defaults shared by settings and code paths that must not import pydantic."""

# One DuckDB row group: a transaction appending at least this many rows to a table has
# them written straight to the database file, not to the log and again at a checkpoint.
DEFAULT_BATCH_SIZE = 122_880
# Embedding a game holds its dense description vector and several matrices: smaller
# batches keep `embed` under 1.5 GiB at the same speed (measured at 500k games).
DEFAULT_EMBED_BATCH_SIZE = 50_000
