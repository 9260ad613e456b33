"""The MTM family on ONNX Runtime: description -> text tokens -> condition graph; library retrieval;
DPM-Solver++ over the step graph with CFG; the codec's decoder -> audio.

A model folder (models/mtm/ or --models DIR) holds manifest.json, condition.onnx, step.onnx and,
optionally, library/ (library.py's index; without it the DiT runs without retrieved music).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from ...codec.runtime import Codec
from ...music.music import Music
from ...progress import Progress, report
from ...runtime.sessions import open_session, session_provider
from ...runtime.store import ModelFolder, find_model
from .describe import Attributes, attributes_of, describe
from .library import Library
from .sampler import sample, x0_from_v
from .text import TextEncoder, text_encoder

FAMILY = "mtm"
GUIDANCE, STEPS = 3.0, 25


def load(model_dir: Optional[Path] = None, int8: bool = False) -> "MTM":
    """The family's entry point (pipelines/__init__.py); there is no int8 variant yet."""
    return MTM(find_model(FAMILY, model_dir))


def model_text_encoder(model: ModelFolder) -> TextEncoder:
    """The text encoder the model was trained with, as its manifest names it."""
    return text_encoder(model.manifest.get("interface", {}).get("text_encoder", {}))


def fit_frames(latent: np.ndarray, frames: int) -> np.ndarray:
    """The retrieved music's latent looped or cut to `frames`."""
    return np.resize(latent, (frames, latent.shape[1])) if len(latent) else np.zeros((frames, latent.shape[1]), np.float32)


class MTM:
    def __init__(self, model: ModelFolder, threads: int = 0):
        self.model = model
        self.config = model.stage_config("mtm")
        self.text = model_text_encoder(model)
        self.sessions = {role: open_session(model.file("mtm", role), threads) for role in ("condition", "step")}
        self.codec = Codec.load(threads=threads)
        library = model.path / "library"
        self.library = Library.load(library, self.text) if library.is_dir() else Library([], self.text)
        self.guidance = float(model.manifest.get("sampling", {}).get("guidance", GUIDANCE))
        self.steps = int(model.manifest.get("sampling", {}).get("steps", STEPS))

    @property
    def info(self) -> dict:
        return self.model.info({"mtm": ["condition.onnx", "step.onnx"]})

    @property
    def providers(self) -> dict[str, str]:
        return {"mtm": session_provider(self.sessions["step"])}

    def generate(self, plan, inputs: Optional[dict] = None, n: int = 1, seed: int = 0, sampling=None,
                 progress: Optional[Progress] = None) -> list[Music]:
        """`n` pieces of audio for `plan`; inputs["description"] (the user's words) wins over the text bridge's."""
        inputs = inputs or {}
        description, attributes = describe(plan, inputs["analysis"]) if "analysis" in inputs else ("", None)
        if inputs.get("description"):  # the user's words: their partition, the video's for what they leave out
            description = inputs["description"]
            attributes = attributes_of(description, attributes)
        began = time.perf_counter()
        latents = self.latents(description, attributes, plan.duration, n, seed, progress)
        timings = {"diffusion": round(time.perf_counter() - began, 4)}
        began = time.perf_counter()
        samples = int(round(plan.duration * self.codec.sample_rate))
        audio = [self.codec.decode_latent(latent, samples) for latent in latents]
        timings["decode"] = round(time.perf_counter() - began, 4)
        report_ = {"providers": self.providers, "timings": timings, "description": description}
        return [Music(stems={"music": a}, sample_rate=self.codec.sample_rate, report=report_) for a in audio]

    def latents(self, description: str, attributes: Optional[Attributes], duration: float, n: int, seed: int,
                progress: Optional[Progress] = None, guidance: Optional[float] = None) -> np.ndarray:
        """(n, frames, latent_dim): variation i starts from seed + i's noise."""
        frames = max(1, int(np.ceil(duration * self.codec.sample_rate / self.codec.token_hop)))
        cond = self.condition(description, attributes, duration, frames, n)
        null = self.null_condition(cond)
        noise = np.stack([np.random.default_rng(seed + i).standard_normal((frames, self.config["latent_dim"]))
                          for i in range(n)]).astype(np.float32)
        report(progress, "diffusion", 0.0)
        return sample(self.denoise, noise.shape, cond, null, self.guidance if guidance is None else guidance,
                      self.steps, seed=0, progress=progress, noise=noise)

    def condition(self, description: str, attributes: Optional[Attributes], duration: float, frames: int,
                  n: int) -> dict:
        tokens, mask = self.text.tokens(description)
        memory = self.sessions["condition"].run(None, {"text": tokens[None]})[0]
        broad = self.library.broad(description, k=1)
        target = self.library.target(attributes, description, k=1) if attributes else []
        control = fit_frames(broad[0].latent, frames) if broad else np.zeros((frames, self.config["latent_dim"]))
        style = target[0].embedding if target else np.zeros(self.config["style_dim"])
        batch = lambda a: np.repeat(np.asarray(a, np.float32)[None], n, axis=0)  # noqa: E731
        return {"memory": np.repeat(memory, n, axis=0), "text_mask": batch(mask), "start": batch(0.0),
                "duration": batch(duration), "style": batch(style), "control": batch(control),
                "control_gate": batch(1.0 if broad else 0.0), "retrieved": [i.path for i in broad + target]}

    def null_condition(self, cond: dict) -> dict:
        """The dropped conditions the DiT learnt (nets/mtm.py drop_conditions): no text, style or music."""
        empty = np.zeros((1,) + cond["memory"].shape[1:-1] + (self.config["text_dim"],), np.float32)
        memory = self.sessions["condition"].run(None, {"text": empty})[0]
        return {**cond, "memory": np.repeat(memory, len(cond["memory"]), axis=0),
                "style": np.zeros_like(cond["style"]), "control_gate": np.zeros_like(cond["control_gate"])}

    def denoise(self, x: np.ndarray, t: float, cond: dict) -> np.ndarray:
        feeds = {k: v for k, v in cond.items() if k != "retrieved"}
        feeds.update(x=x.astype(np.float32), t=np.full(len(x), t, np.float32))
        v = self.sessions["step"].run(None, feeds)[0]
        return x0_from_v(x, v, t)
