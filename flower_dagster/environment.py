"""Setting environment variables for the length of a block, for code that reads them later.

dagster-dbt copies `os.environ` into each dbt subprocess, and the demo's in-process runs read
FLOWER_* settings from it; both need a variable set for a moment and put back afterwards.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_LOCK = threading.RLock()


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the duration of the block, then restore what was there."""
    with _LOCK:
        previous = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
