"""Test-suite set-up: one torch thread per pytest worker (CI has 2 cores, xdist 2 workers),
and the ``shared_data`` fixture for the tests that read the real benchmark data."""

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

#: The benchmark data next to the checkout, found from this file (not the working directory).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """The benchmark data folder, passed explicitly to the loaders that need it.

    ``SKDIFFAD_DATA`` when set, else the ``shared/data`` folder next to the
    checkout; the test is skipped when that folder does not exist.
    """
    env = os.environ.get("SKDIFFAD_DATA")
    path = Path(env).expanduser() if env else SHARED_DATA
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path} (set SKDIFFAD_DATA to run this test)")
    return path
