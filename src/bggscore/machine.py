"""What this machine lends a run."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The cores this process may run on (its affinity where the platform says), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1
