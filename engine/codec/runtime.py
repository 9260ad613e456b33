"""Encode audio to codec tokens (or latents) and decode them back, through ONNX Runtime.

Tokens follow EnCodec-32k's interface: (4, T) ints at 50 Hz (640 samples of 32 kHz
apart), values 0..2047, 2048 the special id (decodes to silence in that codebook's
share). `encode` and `decode_*` work in chunks: the encoder's window reaches one
token into each neighbour and the decoder's `decoder_context_tokens`, so chunks
with that much context give the same tokens and log-mel as one pass. The learned
vocoder reaches `vocoder_context_frames` of log-mel each side, so its chunks get that
much context too and join exactly; Griffin-Lim runs per chunk with `OVERLAP_TOKENS`
of audio crossfaded between chunks.

`int8=True` runs the int8 graphs the manifest lists (`<role>_int8`, shipped only where
they held quality in the export's check) and the fp32 graph of every other role;
`vocoder` picks "vocos" (the learned one, if shipped) or "griffin-lim"; the default is
the manifest's `interface.vocoder`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import CuesmithError
from ..progress import Progress, report
from ..runtime.sessions import open_session
from ..runtime.store import ModelFolder, find_model
from .vocoder import GRIFFIN_LIM, LEARNED, GriffinLim, LearnedVocoder

FAMILY = "codec"
CHUNK_TOKENS = 500  # 10 s
OVERLAP_TOKENS = 8  # 160 ms of crossfade between vocoder chunks
ENCODER_CONTEXT_TOKENS = 1  # the STFT window (1024) reaches under a token (640) into each neighbour


@dataclass
class Encoded:
    codes: np.ndarray  # (codebooks, T) int64
    latent: np.ndarray  # (T, latent_dim) float32, before quantisation
    samples: int  # length of the audio at the codec's rate


class Codec:
    def __init__(self, model: ModelFolder, threads: int = 0, int8: bool = False, vocoder: Optional[str] = None):
        self.model = model
        net = model.stage_config("codec")
        self.sample_rate, self.hop, self.n_fft = net["sample_rate"], net["hop"], net["n_fft"]
        self.token_hop = net["hop"] * net["stack"]
        self.codebooks, self.codebook_size = net["codebooks"], net["codebook_size"]
        interface = model.manifest["interface"]
        self.context = int(interface["decoder_context_tokens"])
        self.graphs = {role: self.graph_role(role, int8) for role in ("encoder", "dequantize", "decoder")}
        self.sessions = {role: open_session(model.file("codec", graph), threads) for role, graph in self.graphs.items()}
        self.vocoder = self.open_vocoder(vocoder or interface.get("vocoder", GRIFFIN_LIM), int8, threads)

    @classmethod
    def load(cls, folder: Optional[Path] = None, threads: int = 0, int8: bool = False,
             vocoder: Optional[str] = None) -> "Codec":
        return cls(find_model(FAMILY, folder), threads, int8, vocoder)

    def open_vocoder(self, name: str, int8: bool, threads: int):
        if name == GRIFFIN_LIM:
            return GriffinLim(self.sample_rate, self.n_fft, self.hop)
        if name != LEARNED:
            raise CuesmithError(f"unknown vocoder {name!r}: {GRIFFIN_LIM} or {LEARNED}")
        self.graphs["vocoder"] = self.graph_role("vocoder", int8)
        context = int(self.model.manifest["interface"]["vocoder_context_frames"])
        return LearnedVocoder(self.model.file("codec", self.graphs["vocoder"]), self.hop, context, threads)

    def graph_role(self, role: str, int8: bool) -> str:
        """`role`'s int8 graph if asked for and shipped, else its fp32 one."""
        return f"{role}_int8" if int8 and f"{role}_int8" in self.model.manifest["stages"]["codec"]["files"] else role

    @property
    def special_id(self) -> int:
        return self.codebook_size

    # -- encoding ---------------------------------------------------------------
    def encode(self, audio: np.ndarray, sample_rate: int, progress: Optional[Progress] = None) -> Encoded:
        """Mono (or (frames, channels)) audio at any rate -> tokens and latent."""
        mono = self.prepare(audio, sample_rate)
        tokens = int(np.ceil(len(mono) / self.token_hop)) or 1
        padded = np.pad(mono, (0, tokens * self.token_hop - len(mono)))
        codes, latents = [], []
        for start in range(0, tokens, CHUNK_TOKENS):
            end = min(tokens, start + CHUNK_TOKENS)
            a, b = max(0, start - ENCODER_CONTEXT_TOKENS), min(tokens, end + ENCODER_CONTEXT_TOKENS)
            latent, code = self.sessions["encoder"].run(None, {"audio": padded[None, a * self.token_hop:b * self.token_hop]})
            latents.append(latent[0, start - a:end - a])
            codes.append(code[0, :, start - a:end - a])
            report(progress, "encode", end / tokens)
        return Encoded(np.concatenate(codes, axis=1), np.concatenate(latents), len(mono))

    def prepare(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 2:
            samples = samples.mean(axis=1)
        if sample_rate != self.sample_rate:
            import librosa

            samples = librosa.resample(samples, orig_sr=sample_rate, target_sr=self.sample_rate, res_type="soxr_hq")
        return np.ascontiguousarray(samples, dtype=np.float32)

    # -- decoding ---------------------------------------------------------------
    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] != self.codebooks:
            raise CuesmithError(f"codes must be ({self.codebooks}, T), not {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() > self.special_id):
            raise CuesmithError(f"codes must lie in 0..{self.special_id}")
        return self.sessions["dequantize"].run(None, {"codes": codes[None].astype(np.int64)})[0][0]

    def decode_codes(self, codes: np.ndarray, samples: Optional[int] = None,
                     progress: Optional[Progress] = None) -> np.ndarray:
        return self.decode_latent(self.dequantize(codes), samples, progress)

    def decode_latent(self, latent: np.ndarray, samples: Optional[int] = None,
                      progress: Optional[Progress] = None) -> np.ndarray:
        """(T, D) latent -> audio at `sample_rate`, chunk by chunk."""
        latent = np.asarray(latent, dtype=np.float32)
        audio = (self.vocode_exact if self.vocoder.exact else self.vocode_crossfaded)(latent, progress)
        return audio[:samples] if samples else audio

    def vocode_exact(self, latent: np.ndarray, progress: Optional[Progress]) -> np.ndarray:
        """Each chunk vocoded with enough log-mel context each side to equal one pass."""
        tokens, stack = len(latent), self.token_hop // self.hop
        pad = -(-self.vocoder.context_frames // stack)  # in tokens, rounded up
        out = np.zeros(tokens * self.token_hop, np.float32)
        for start in range(0, tokens, CHUNK_TOKENS):
            end = min(tokens, start + CHUNK_TOKENS)
            a, b = max(0, start - pad), min(tokens, end + pad)
            audio = self.vocoder(self.logmel(latent, a, b))
            out[start * self.token_hop:end * self.token_hop] = audio[(start - a) * self.token_hop:
                                                                     (end - a) * self.token_hop]
            report(progress, "decode", end / tokens)
        return out

    def vocode_crossfaded(self, latent: np.ndarray, progress: Optional[Progress]) -> np.ndarray:
        """Each chunk vocoded with `OVERLAP_TOKENS` each side, crossfaded into its neighbours."""
        tokens = len(latent)
        out = np.zeros(tokens * self.token_hop, np.float32)
        weight = np.zeros_like(out)
        for start in range(0, tokens, CHUNK_TOKENS):
            end = min(tokens, start + CHUNK_TOKENS)
            a, b = max(0, start - OVERLAP_TOKENS), min(tokens, end + OVERLAP_TOKENS)
            audio = self.vocoder(self.logmel(latent, a, b))
            ramp = self.crossfade(len(audio), a > 0, b < tokens)
            out[a * self.token_hop:b * self.token_hop] += audio * ramp
            weight[a * self.token_hop:b * self.token_hop] += ramp
            report(progress, "decode", end / tokens)
        return out / np.maximum(weight, 1e-6)

    def logmel(self, latent: np.ndarray, a: int, b: int) -> np.ndarray:
        """Log-mel of tokens [a, b), the decoder given `context` tokens each side (exact)."""
        lo, hi = max(0, a - self.context), min(len(latent), b + self.context)
        logmel = self.sessions["decoder"].run(None, {"latent": latent[None, lo:hi]})[0][0]
        stack = self.token_hop // self.hop
        return logmel[:, (a - lo) * stack:(b - lo) * stack]

    def crossfade(self, length: int, fade_in: bool, fade_out: bool) -> np.ndarray:
        ramp = np.ones(length, np.float32)
        n = min(length // 2, 2 * OVERLAP_TOKENS * self.token_hop)
        if fade_in:
            ramp[:n] = np.linspace(0.0, 1.0, n, dtype=np.float32)
        if fade_out:
            ramp[-n:] = np.minimum(ramp[-n:], np.linspace(1.0, 0.0, n, dtype=np.float32))
        return ramp
