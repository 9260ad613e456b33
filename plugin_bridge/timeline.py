"""Timelines are read and written by the engine (engine/timeline.py); this name stays for the bridge."""
from cuesmith.engine.timeline import (Timeline, TimelineClip, clips_for_timeline, read_timeline,  # noqa: F401
                                      write_scored_timeline)
