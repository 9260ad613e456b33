"""User settings: an environment variable wins over <user config dir>/cuesmith/config.json.

config.json is a flat object, e.g. {"llm_model": "/models/qwen.gguf", "soundfont": "/sf/FluidR3.sf2"};
the panel's settings reach an engine it starts through the environment variables.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

ENV = {"llm_model": "CUESMITH_LLM", "soundfont": "CUESMITH_SOUNDFONT"}


def config_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("cuesmith")) / "config.json"


def user_setting(key: str) -> Optional[str]:
    """The setting `key` (see ENV), or None when neither the environment nor config.json has it."""
    if os.environ.get(ENV[key]):
        return os.environ[ENV[key]]
    path = config_path()
    try:
        value = json.loads(path.read_text()).get(key) if path.exists() else None
    except (ValueError, OSError, AttributeError):
        return None  # an unreadable config file must not stop a job; the defaults apply
    return str(value) if value else None
