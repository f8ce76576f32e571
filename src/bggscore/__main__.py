"""`python -m bggscore` runs the command-line interface."""

from bggscore.cli.main import run

run()
