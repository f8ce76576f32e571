"""What each command does: one module per command, each taking settings and typed
options and returning a typed result (bggscore.results). The CLI only parses, calls a
task and renders its result."""
