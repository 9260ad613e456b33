"""Planning: from a video analysis to a ScorePlan (tempo map, bar grid, sections, per-bar controls)."""
