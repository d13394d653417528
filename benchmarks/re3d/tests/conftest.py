"""Set-up for the re3d benchmark's tests: the scripts beside this folder become importable
(``import convert_re3d``), and the read-only re3d data is found at ``<repo>/../shared/data/re3d``
or the tests that need it skip."""

import os
import sys
from pathlib import Path

import pytest

# Never reach the Hub from tests (as tests/conftest.py does for the package's tests).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH = Path(__file__).resolve().parents[1]  # benchmarks/re3d
REPO = BENCH.parents[1]
RE3D_DATA = REPO.parent / "shared" / "data" / "re3d"
sys.path.insert(0, str(BENCH))


@pytest.fixture
def re3d_data() -> Path:
    """The re3d parts in the read-only shared folder beside the repository (never copied here)."""
    if not RE3D_DATA.is_dir():
        pytest.skip(f"{RE3D_DATA} is absent: this test reads the real re3d corpus from the shared folder "
                    "beside the repository")
    return RE3D_DATA
