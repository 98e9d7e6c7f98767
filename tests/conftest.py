"""Shared test setup: one CPU thread per process, and no per-process caches leaking between tests.

Nothing here imports torch or huggingface_hub: some tests must set HF_* variables before the
first import of huggingface_hub.
"""

import os
import sys

import pytest

# With two cores and one of them busy, torch's default two OpenMP threads spin against each
# other and a tiny training run takes ~100x longer. Set before torch is imported (subprocesses
# inherit it); a value given by the caller wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _clear_hub_caches():
    """Forget reachability probes and snapshot hashes of other tests (kept per process)."""
    _clear()
    yield
    _clear()


def _clear() -> None:
    hub = sys.modules.get("hub_models.hub")
    if hub is not None:
        hub.endpoint_reachable.cache_clear()
        hub.bundled_revision.cache_clear()
