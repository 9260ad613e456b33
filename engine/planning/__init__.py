"""Planning: from a video analysis to a ScorePlan (tempo map, bar grid, sections, per-bar controls).

`plan` is the cut-locked planner (every hard cut on a beat); `first_plan` is the
constant-tempo baseline V-MusProd uses (one tempo from motion).
"""
from .cutlock import plan
from .plan import PlanOptions, ScorePlan, first_plan

__all__ = ["plan", "first_plan", "PlanOptions", "ScorePlan"]
