import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
CLI = ROOT / ".venv" / "bin" / "cuesmith"


@pytest.fixture(scope="session", autouse=True)
def private_user_config(tmp_path_factory):
    """Engines and clients started by the tests share a private user config (the engine's token lives there),
    never the user's own."""
    saved = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("user-config"))
    yield
    if saved is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = saved


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own analysis cache, so none sees another's results."""
    monkeypatch.setenv("CUESMITH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def cli() -> str:
    """The installed console script (falls back to the one on PATH)."""
    return str(CLI) if CLI.exists() else "cuesmith"
