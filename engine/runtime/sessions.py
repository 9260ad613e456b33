"""ONNX Runtime sessions: providers chosen once (TensorRT -> CUDA -> CPU) and reported."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import onnxruntime as ort

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


@lru_cache(maxsize=1)
def available_providers() -> tuple[str, ...]:
    """The preferred providers this onnxruntime build offers, best first (CPU always last)."""
    offered = set(ort.get_available_providers())
    return tuple(p for p in PREFERRED_PROVIDERS if p in offered) or ("CPUExecutionProvider",)


def open_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=list(available_providers()))


def session_provider(session: ort.InferenceSession) -> str:
    """The provider that actually runs the session (the first one it accepted)."""
    return session.get_providers()[0]
