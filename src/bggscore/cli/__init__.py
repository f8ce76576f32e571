"""The command-line layer: parse flags, call the core, render. Nothing else."""
