"""cuesmith's inference engine: video analysis, music, planning, runtime, critique.

The public face is `Engine` (one object, a few verbs, plain results); the
CLI, the OSC bridge and the GUI are thin layers over it.
"""
__version__ = "0.1.0"

from .errors import CuesmithError  # noqa: E402
from .api import Engine  # noqa: E402

__all__ = ["Engine", "CuesmithError", "__version__"]
