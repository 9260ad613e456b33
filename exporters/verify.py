"""Check exported graphs against the torch net they came from.

A greedy decode of `steps` tokens runs in torch (KV cache); the ONNX decoder
graphs (fp32 and int8, concatenating and in-place caches) are fed the same tokens step by step. Reported per graph:
max |delta logit| over every step's type and field logits, and greedy
agreement: the share of steps where the graph's greedy token (type, then
that type's fields) equals torch's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cuesmith.engine.music.controls import BarControls, control_ids
from cuesmith.engine.music.score import Chord, Note, Part, Song, TempoChange
from cuesmith.engine.music.tokens import N_FIELDS, TokenType, encode, quantize
from cuesmith.engine.runtime.context import context_rows
from cuesmith.engine.runtime.kv_cache import InPlaceCache, is_in_place

from .onnx_export import DECODER_FILES, ENCODER_INPUTS, layer_names, load_checkpoint

VERIFIED_AS = {"decoder": "fp32", "decoder_int8": "int8", "decoder_in_place": "fp32_in_place",
               "decoder_int8_in_place": "int8_in_place"}
SOURCE_STAGE = {"melody": "chord", "accompaniment": "chord+melody"}


def verification_song(bars: int = 4) -> Song:
    """Four bars of I-vi-IV-V in C with a scale melody and a broken-chord accompaniment."""
    roots, qualities = (0, 9, 5, 7), ("M", "m", "M", "M")
    chords, melody, accompaniment = [], [], []
    for bar in range(bars):
        start, root = bar * 1920, roots[bar % 4]
        chords.append(Chord(start, start + 1920, root, qualities[bar % 4]))
        melody += [Note(start + i * 480, start + (i + 1) * 480, 72 + (bar + i) % 8, 90) for i in range(4)]
        accompaniment += [Note(start + i * 240, start + (i + 1) * 240, 48 + root + 4 * (i % 3), 70) for i in range(8)]
    return quantize(Song(parts=[Part("melody", melody), Part("accompaniment", accompaniment)], chords=chords,
                         tempos=[TempoChange(0, 100.0)]))


def encoder_feeds(stage: str, net, batch: int = 2) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """ONNX feeds of the encoder, the memory bars, and the per-bar control ids."""
    song = verification_song()
    ids = control_ids([BarControls(8.0, 80.0, "major", 64.0, b == 0, "chorus" if b > 1 else "verse")
                       for b in range(4)])
    if stage == "chord":
        video = np.zeros((batch, 1, net.config.d_video), dtype=np.float32)
        return {"video": video}, np.zeros((batch, 1), dtype=np.int64), ids
    source = encode(song, SOURCE_STAGE[stage])
    context = context_rows(source, ids, 4)
    feeds = {"source": np.repeat(source[None], batch, 0), "source_context": np.repeat(context[None], batch, 0),
             "source_bar": np.repeat(context[None, :, 0], batch, 0)}
    return feeds, feeds["source_bar"], ids


def greedy_token(type_logits: np.ndarray, field_logits: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """(B, N_FIELDS) greedy tokens: the type, then the argmax of each field for that type."""
    kinds = type_logits.argmax(-1)
    tokens = np.zeros((len(kinds), N_FIELDS), dtype=np.int64)
    tokens[:, 0] = kinds
    offsets = np.cumsum((0,) + tuple(sizes[1:]))
    for b, kind in enumerate(kinds):
        row = field_logits[b, kind]
        for f in range(1, N_FIELDS):
            tokens[b, f] = row[offsets[f - 1]:offsets[f]].argmax()
    return tokens


def torch_greedy(net, feeds: dict, memory_bar: np.ndarray, ids: np.ndarray, steps: int):
    """Greedy decode in torch; returns the tokens fed at each step and the logits."""
    inputs = [torch.from_numpy(feeds[n]) for n in ENCODER_INPUTS[net.config.stage]]
    with torch.no_grad():
        memory = net.encode(*inputs) if net.config.has_token_encoder else net.encode_video(inputs[0])
        cross_k, cross_v = net.memory_kv(memory)
        batch = memory.shape[0]
        past_k, past_v = net.empty_cache(batch)
        sequence = np.zeros((batch, 1, N_FIELDS), dtype=np.int64)
        sequence[:, 0, 0] = TokenType.BOS
        logits = []
        for _ in range(steps):
            context = np.stack([context_rows(s, ids, len(ids))[-1:] for s in sequence])
            type_logits, field_logits, past_k, past_v = net.step(
                torch.from_numpy(sequence[:, -1:]), torch.from_numpy(context), past_k, past_v,
                cross_k, cross_v, torch.from_numpy(memory_bar))
            logits.append((type_logits.numpy(), field_logits.numpy(), context))
            nxt = greedy_token(logits[-1][0], logits[-1][1], net.config.field_sizes)
            nxt[:, 0] = np.maximum(nxt[:, 0], TokenType.BAR)  # keep it a music token so the walk goes on
            sequence = np.concatenate([sequence, nxt[:, None]], axis=1)
    return sequence, logits


def compare_graphs(net, folder: Path, decoder_file: str, feeds, memory_bar, sequence, logits) -> dict:
    stage = net.config.stage
    options = ort.SessionOptions()
    encoder = ort.InferenceSession(str(folder / f"{stage}.encoder.onnx"), options, providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(folder / decoder_file), options, providers=["CPUExecutionProvider"])
    n = net.config.n_layers
    cross = dict(zip(layer_names("cross", n), encoder.run(None, feeds)))
    batch = sequence.shape[0]
    c = net.config
    empty = np.zeros((batch, c.n_heads, 1, c.head_dim), dtype=np.float32)
    past = {name: empty for name in layer_names("past", n)}
    if is_in_place(decoder):  # through the runtime's binding (runtime/kv_cache.py)
        cache = InPlaceCache(decoder, list(past), (batch, c.n_heads, len(logits), c.head_dim))
    worst, agree = 0.0, 0
    for i, (type_ref, field_ref, context) in enumerate(logits):
        out = {"token": sequence[:, i:i + 1], "context": context}
        if is_in_place(decoder):
            type_logits, field_logits = cache.step(out, cross, memory_bar)
        else:
            type_logits, field_logits, *present = decoder.run(None, {**out, "memory_bar": memory_bar, **past, **cross})
            past = dict(zip(layer_names("past", n), present))
        worst = max(worst, float(np.abs(type_logits - type_ref).max()), float(np.abs(field_logits - field_ref).max()))
        same = greedy_token(type_logits, field_logits, c.field_sizes) == greedy_token(type_ref, field_ref, c.field_sizes)
        agree += int(same.all(axis=1).sum())
    return {"max_abs_logit_diff": worst, "greedy_agreement": agree / (len(logits) * batch)}


def verify_stage(checkpoint: Path, folder: Path, steps: int = 48) -> dict:
    return verify_net(load_checkpoint(checkpoint)[0], folder, steps)


def verify_net(net, folder: Path, steps: int = 48) -> dict:
    """The stage's graphs in `folder` (fp32, and int8 where shipped) against `net` in torch."""
    stage = net.config.stage
    feeds, memory_bar, ids = encoder_feeds(stage, net)
    sequence, logits = torch_greedy(net, feeds, memory_bar, ids, steps)
    report = {}
    for role, name in DECODER_FILES.items():
        if (folder / name.format(stage=stage)).is_file():
            report[VERIFIED_AS[role]] = compare_graphs(net, folder, name.format(stage=stage), feeds, memory_bar,
                                                       sequence, logits)
    return report
