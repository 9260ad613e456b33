import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
CLI = ROOT / ".venv" / "bin" / "cuesmith"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own analysis cache, so none sees another's results."""
    monkeypatch.setenv("CUESMITH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def cli() -> str:
    """The installed console script (falls back to the one on PATH)."""
    return str(CLI) if CLI.exists() else "cuesmith"
