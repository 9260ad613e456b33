"""VidMuse on ONNX Runtime: video -> codec tokens -> audio, in sliding windows.

    features   2 fps frames inside each window (local) and `global_frames` spread over the whole
               clip (global), as patch statistics (features.py), from one decode of the video
    condition  per window: vidmuse.video.onnx (visual encoder + LSTV) then vidmuse.cross.onnx
               (every layer's cross K/V), for the video and for the null (all-zero) video
    decode     vidmuse.step.onnx step by step with its KV cache (decode.py), CFG and top-k in numpy
    windows    `window_seconds` long; each after the first opens on the previous one's last
               `prompt_seconds` of codes (as the reference)
    codec      the codes of the whole clip -> audio (the codec named in the manifest), one stem "music"

numpy + onnxruntime only.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import CuesmithError
from ...music.music import Music
from ...progress import Progress, report
from ...runtime.sampling import Sampling
from ...runtime.sessions import open_session, session_provider
from ...runtime.store import ModelFolder, find_model
from .decode import Guidance, StepShape, decode_window
from .features import ClipFeatures, sample_stats

FAMILY = "vidmuse"
STEM = "music"


@dataclass(frozen=True)
class Windows:
    """Where each window starts and how many code frames it holds, in codec frames."""

    total: int  # code frames of the clip
    window: int
    prompt: int

    def spans(self) -> list[tuple[int, int]]:
        spans, start = [], 0
        while True:
            spans.append((start, min(self.window, self.total - start)))
            if start + self.window >= self.total:
                return spans
            start += self.window - self.prompt


@dataclass
class VideoFeatures:
    """Patch statistics of the local frames (2 fps over the clip) and the global frames."""

    local_times: np.ndarray  # seconds from the clip start
    local: np.ndarray  # (N, 50, F)
    globl: np.ndarray  # (G, 50, F)


def load(model_dir: Optional[Path] = None, int8: bool = False, codec=None) -> "VidMuse":
    """The family's entry point (pipelines/__init__.py)."""
    return VidMuse(model_dir, int8=int8, codec=codec)


def load_codec(model: ModelFolder):
    """The codec the model was trained with, as its manifest names it: {"model": "codec"} (the model
    store's codec, engine/codec/runtime.py) or {"module": "dotted.path" | "/abs/file.py"} whose
    `load()` returns an object with `sample_rate` and `decode_codes(codes, samples, progress)`."""
    spec = model.manifest.get("codec") or {"model": "codec"}
    if "module" in spec:
        return _import(spec["module"]).load()
    try:
        from ...codec.runtime import Codec
    except ImportError:
        raise CuesmithError(f"model {model.family} needs the audio codec runtime (engine/codec), "
                            "which this install lacks", hint="update cuesmith") from None
    return Codec.load(Path(spec["folder"]) if spec.get("folder") else None)


def _import(where: str):
    if not where.endswith(".py"):
        return importlib.import_module(where)
    spec = importlib.util.spec_from_file_location(f"cuesmith_codec_{Path(where).stem}", where)
    if spec is None or not Path(where).is_file():
        raise CuesmithError("codec module: no such file", where)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class VidMuse:
    def __init__(self, folder: Optional[Path] = None, int8: bool = False, codec=None):
        self.model = find_model(FAMILY, folder)
        self.net = self.model.stage_config(FAMILY)
        step_role = "step_int8" if int8 else "step"
        paths = {role: self.model.file(FAMILY, role) for role in ("video", "cross", step_role)}
        self.sessions = {role: open_session(path) for role, path in paths.items()}
        self.step = self.sessions[step_role]
        self.clip = None
        if "clip" in self.model.manifest["stages"][FAMILY]["files"]:  # the CLIP visual encoder, else statistics
            paths["clip"] = self.model.file(FAMILY, "clip")
            self.clip = ClipFeatures(paths["clip"])
        self.graphs = {FAMILY: [p.name for p in paths.values()]}
        self.codec = codec if codec is not None else load_codec(self.model)
        defaults = self.model.manifest.get("sampling", {})
        self.guidance = Guidance(int(defaults.get("top_k", 250)), float(defaults.get("temperature", 1.0)),
                                 float(defaults.get("cfg_scale", 3.0)))
        n = self.net
        if n["window_seconds"] <= n["prompt_seconds"]:
            raise CuesmithError(f"model {FAMILY}: window_seconds must exceed prompt_seconds",
                                self.model.path / "manifest.json")
        self.shape = StepShape(n["n_layers"], n["n_heads"], n["d_model"] // n["n_heads"], n["codebooks"],
                               n["codebook_size"])

    @property
    def info(self) -> dict:
        return self.model.info(self.graphs)

    @property
    def providers(self) -> dict[str, str]:
        return {"condition": session_provider(self.sessions["video"]), "decode": session_provider(self.step),
                "codec": type(self.codec).__name__}

    # -- the family's interface ---------------------------------------------------------------
    def generate(self, plan, inputs: Optional[dict] = None, n: int = 1, seed: int = 0,
                 sampling: Sampling = Sampling(), progress: Optional[Progress] = None) -> list[Music]:
        analysis = (inputs or {}).get("analysis")
        if analysis is None or not Path(analysis.info.path).is_file():
            raise CuesmithError("the vidmuse family needs one video file to read frames from",
                                getattr(getattr(analysis, "info", None), "path", None),
                                hint="score a video file (timelines: use --family vmusprod)")
        timings = {}
        t = time.perf_counter()
        aspect = analysis.info.width / max(1, analysis.info.height)
        features = self.video_features(Path(analysis.info.path), analysis.start, plan.duration, progress, aspect)
        timings["video_features"] = round(time.perf_counter() - t, 4)
        guidance = self.guidance_for(sampling)
        codes = self.generate_codes(features, plan.duration, n, seed, guidance, progress, timings)
        t = time.perf_counter()
        samples = int(round(plan.duration * self.codec.sample_rate))
        audio = [np.asarray(self.codec.decode_codes(c, samples), np.float32)[:samples] for c in codes]
        report(progress, "decode audio", 1.0)
        timings["codec"] = round(time.perf_counter() - t, 4)
        result = {"providers": self.providers, "timings": timings}
        return [Music(stems={STEM: a}, sample_rate=self.codec.sample_rate, report=result) for a in audio]

    def guidance_for(self, sampling: Sampling) -> Guidance:
        """The request's temperature and top-k where set (top-k 0: the model's), the model's CFG scale."""
        temperature = self.guidance.temperature if sampling.temperature is None else sampling.temperature
        return Guidance(sampling.top_k or self.guidance.top_k, temperature, self.guidance.cfg_scale)

    # -- stages ------------------------------------------------------------------------------
    def windows(self, duration: float) -> Windows:
        rate = self.net["frame_rate"]
        return Windows(max(1, math.ceil(duration * rate)), int(round(self.net["window_seconds"] * rate)),
                       int(round(self.net["prompt_seconds"] * rate)))

    def video_features(self, path: Path, start: float, duration: float, progress: Optional[Progress] = None,
                       aspect: float = 16 / 9) -> VideoFeatures:
        local_times = np.arange(0.0, duration, 1.0 / self.net["local_fps"])
        global_times = (np.arange(self.net["global_frames"]) + 0.5) * duration / self.net["global_frames"]
        times, end = np.concatenate([local_times, global_times]), start + duration
        features = (sample_stats(path, times, start, end, progress) if self.clip is None else
                    self.clip(path, times, start, end, aspect, progress))
        return VideoFeatures(local_times, features[:len(local_times)], features[len(local_times):])

    def condition(self, local: np.ndarray, globl: np.ndarray) -> list[np.ndarray]:
        """One window's cross K/V: cross_k_0.., cross_v_0.. (batch 1)."""
        tokens = self.sessions["video"].run(None, {"local": local[None], "global": globl[None]})[0]
        return self.sessions["cross"].run(None, {"tokens": tokens})

    def generate_codes(self, features: Optional[VideoFeatures], duration: float, n: int, seed: int,
                       guidance: Guidance, progress: Optional[Progress] = None,
                       timings: Optional[dict] = None) -> list[np.ndarray]:
        """`n` code sequences (K, frames) for the clip; `features` None: the unconditional path (the
        null video on both sides of the guidance)."""
        rng = np.random.default_rng(seed)
        windows = self.windows(duration)
        rate, fps = self.net["frame_rate"], self.net["local_fps"]
        if features is None:
            features = null_features(duration, fps, self.net["global_frames"], self.net["tokens_per_frame"],
                                     self.net["visual_dim"])
        out = np.zeros((n, self.shape.codebooks, 0), np.int64)
        spent = {"condition": 0.0, "decode_steps": 0.0}
        spans = windows.spans()
        for index, (start, frames) in enumerate(spans):
            t = time.perf_counter()
            begin, end = start / rate, (start + frames) / rate
            inside = (features.local_times >= begin - 1e-6) & (features.local_times < end - 1e-6)
            local = features.local[inside] if inside.any() else features.local[-1:]
            cross = self.condition(local, features.globl)
            null = self.condition(np.zeros_like(local), np.zeros_like(features.globl))
            spent["condition"] += time.perf_counter() - t
            t = time.perf_counter()
            prompt = out[:, :, start:] if index else None
            stage = f"generate music (window {index + 1}/{len(spans)})"
            codes = decode_window(self.step, self.shape, cross, null, n, frames, prompt, rng, guidance, progress, stage)
            out = np.concatenate([out[:, :, :start], codes], axis=2)
            spent["decode_steps"] += time.perf_counter() - t
        if timings is not None:
            timings.update({k: round(v, 4) for k, v in spent.items()})
        return list(out[:, :, :windows.total])


def null_features(duration: float, fps: float, global_frames: int, tokens: int, dim: int) -> VideoFeatures:
    times = np.arange(0.0, duration, 1.0 / fps)
    return VideoFeatures(times, np.zeros((len(times), tokens, dim), np.float32),
                         np.zeros((global_frames, tokens, dim), np.float32))
