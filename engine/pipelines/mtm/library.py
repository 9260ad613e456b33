"""The music bridge: a library of audio with embeddings, and MTM's two retrievals.

Each item: its codec latent (T, 128, the ControlFormer's input when broadly retrieved), an
embedding (latent mean and std per channel, then tempo, valence, arousal, loudness: the
stylization module's input when target-retrieved), a caption in the text bridge's vocabulary
(describe.caption) and its attributes (tempo class, mood word).

    broad   the items whose caption is nearest the description (cosine of pooled text vectors)
    target  the items in the description's partition (same tempo class and mood), nearest first

Music's valence and arousal here are a reading of the project's audio analysis, not a learned
model: valence from the mode and brightness, arousal from tempo and onset rate.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...errors import CuesmithError
from ...files import atomic_path, write_json_atomic
from ...music import mood
from ...music.audio import AudioAnalysis, analyze_audio, audio_from_samples
from ...progress import Progress, report
from .describe import DEFAULT_INSTRUMENTS, Attributes, caption, tempo_class

ATTRIBUTE_FEATURES = 4  # tempo, valence, arousal, loudness
INDEX_JSON, INDEX_ARRAYS = "library.json", "library.npz"


@dataclass
class LibraryItem:
    path: str
    caption: str
    tempo: str
    mood: str
    bpm: float
    embedding: np.ndarray  # (2 * latent_dim + ATTRIBUTE_FEATURES,) float32
    latent: np.ndarray  # (T, latent_dim) float32

    @property
    def attributes(self) -> Attributes:
        return Attributes(self.tempo, self.mood)


def embedding_dim(latent_dim: int) -> int:
    return 2 * latent_dim + ATTRIBUTE_FEATURES


def valence_arousal(analysis: AudioAnalysis, mode: Optional[str] = None,
                    bpm: Optional[float] = None) -> tuple[float, float]:
    major = 1.0 if (mode or analysis.mode) == "major" else 0.0
    bright = min(1.0, analysis.brightness_hz / 4000.0)
    onset_rate = len(analysis.onsets) / max(analysis.duration, 1e-6)
    pace = min(1.0, max(0.0, ((bpm or analysis.tempo or 90.0) - 60.0) / 120.0))
    return 0.25 + 0.45 * major + 0.3 * bright, 0.6 * pace + 0.4 * min(1.0, onset_rate / 8.0)


def item_from_audio(path: str, samples: np.ndarray, rate: int, codec, bpm: Optional[float] = None,
                    mode: Optional[str] = None, instruments: str = DEFAULT_INSTRUMENTS) -> LibraryItem:
    """Analyse and encode one piece of music (mono samples at `rate`). What its annotations know (the
    corpus's tempo, key and programs) wins over the analysis's estimate."""
    analysis = analyze_audio(audio_from_samples(samples, rate, path))
    latent = codec.encode(samples, rate).latent.astype(np.float32)
    bpm = float(bpm or analysis.tempo or 90.0)
    mode = mode or analysis.mode or "major"
    valence, arousal = valence_arousal(analysis, mode, bpm)
    loudness = (analysis.loudness_lufs if analysis.loudness_lufs is not None else -60.0) / 60.0 + 1.0
    features = np.array([bpm / 200.0, valence, arousal, loudness], np.float32)
    embedding = np.concatenate([latent.mean(axis=0), latent.std(axis=0), features]).astype(np.float32)
    return LibraryItem(path, caption(bpm, valence, arousal, mode, instruments), tempo_class(bpm),
                       mood.label(valence, arousal), bpm, embedding, latent)


class Library:
    def __init__(self, items: Sequence[LibraryItem], text):
        self.items = list(items)
        self.text = text
        self.caption_vectors = np.stack([text.sentence(i.caption) for i in self.items]) if self.items else None

    @classmethod
    def build(cls, files: Sequence[Path], codec, text, progress: Optional[Progress] = None) -> "Library":
        from ...music.audio import load_audio

        items = []
        for n, path in enumerate(files):
            audio = load_audio(path)
            items.append(item_from_audio(str(path), audio.stereo.mean(axis=1), audio.native_rate, codec))
            report(progress, "library", (n + 1) / len(files))
        return cls(items, text)

    def broad(self, description: str, k: int = 1) -> list[LibraryItem]:
        """The `k` items whose captions are most similar to `description`."""
        if not self.items:
            return []
        scores = self.caption_vectors @ self.text.sentence(description)
        return [self.items[i] for i in np.argsort(-scores, kind="stable")[:k]]

    def target(self, attributes: Attributes, description: str = "", k: int = 1) -> list[LibraryItem]:
        """Up to `k` items of the partition `attributes` (tempo class and mood), nearest the description first."""
        inside = [i for i, item in enumerate(self.items) if item.attributes == attributes]
        if not inside:
            return []
        scores = self.caption_vectors[inside] @ self.text.sentence(description)
        return [self.items[inside[j]] for j in np.argsort(-scores, kind="stable")[:k]]

    # -- storage -------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"embedding_{n}": i.embedding for n, i in enumerate(self.items)}
        arrays.update({f"latent_{n}": i.latent.astype(np.float16) for n, i in enumerate(self.items)})
        with atomic_path(folder / INDEX_ARRAYS) as tmp, tmp.open("wb") as f:
            np.savez_compressed(f, **arrays)
        meta = [{k: v for k, v in asdict(i).items() if k not in ("embedding", "latent")} for i in self.items]
        write_json_atomic(folder / INDEX_JSON, {"text_encoder": self.text.name, "items": meta})

    @classmethod
    def load(cls, folder: Path, text) -> "Library":
        try:
            meta = json.loads((folder / INDEX_JSON).read_text())
            arrays = np.load(folder / INDEX_ARRAYS)
        except (OSError, ValueError) as error:
            raise CuesmithError(f"unreadable music library ({error})", folder) from None
        items = [LibraryItem(**m, embedding=arrays[f"embedding_{n}"], latent=arrays[f"latent_{n}"].astype(np.float32))
                 for n, m in enumerate(meta["items"])]
        return cls(items, text)
