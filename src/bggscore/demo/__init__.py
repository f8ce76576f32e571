"""Demo data for ``bggscore demo`` and the benchmarks: a synthetic BoardGameGeek-like catalogue."""
