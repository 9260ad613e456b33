"""MTM's DiT: the ControlFormer's zero-init property, condition dropout, training (resumable), ONNX export."""
from dataclasses import replace

import numpy as np
import pytest

from cuesmith.engine.pipelines.mtm.library import Library, LibraryItem, embedding_dim
from cuesmith.engine.pipelines.mtm.text import HashedText

torch = pytest.importorskip("torch")

from cuesmith.engine.nets.mtm import MTMDiT, tiny  # noqa: E402
from cuesmith.engine.training.mtm import CONFIGS, Neighbours, train  # noqa: E402
from cuesmith.exporters.mtm_export import example_inputs, export, verify  # noqa: E402


def inputs(model, **change):
    example = example_inputs(model, batch=2, frames=9, tokens=4, seed=3)
    example.update(change)
    x, t = example.pop("x"), example.pop("t")
    return x, t, example


def perturb_control_out(model):
    with torch.no_grad():
        for layer in model.control.zero_out:
            layer.weight.normal_(0, 0.5)
        model.control.zero_in.weight.normal_(0, 0.5)


@torch.no_grad()
def test_zeroed_controlformer_output_equals_the_plain_dit():
    torch.manual_seed(0)
    model = MTMDiT(tiny()).eval()
    x, t, cond = inputs(model)
    with_music = model(x, t, **cond)
    gated_off = model(x, t, **{**cond, "control_gate": torch.zeros(2)})
    torch.testing.assert_close(with_music, gated_off, rtol=0, atol=0)
    perturb_control_out(model)  # trained: the music now steers, the gate still switches it off exactly
    assert (model(x, t, **cond) - with_music).abs().max() > 1e-3
    torch.testing.assert_close(model(x, t, **{**cond, "control_gate": torch.zeros(2)}), gated_off, rtol=0, atol=0)


@torch.no_grad()
def test_stylization_is_identity_at_init_and_steers_once_trained():
    torch.manual_seed(0)
    model = MTMDiT(tiny()).eval()
    x, t, cond = inputs(model)
    base = model(x, t, **cond)
    torch.testing.assert_close(model(x, t, **{**cond, "style": torch.zeros_like(cond["style"])}), base)
    model.style.weight.normal_(0, 0.5)
    assert (model(x, t, **cond) - base).abs().max() > 1e-3


def test_condition_dropout_zeroes_whole_conditions():
    model = MTMDiT(tiny())
    model.config.cond_dropout = 0.5
    _, _, cond = inputs(model)
    cond = {k: v.repeat(50, *([1] * (v.dim() - 1))) for k, v in cond.items()}
    dropped = model.drop_conditions(cond, torch.Generator().manual_seed(0))
    for name in ("text", "style", "control_gate"):
        per_example = dropped[name].reshape(100, -1).abs().sum(dim=1)
        assert 20 < int((per_example == 0).sum()) < 80, name
    torch.testing.assert_close(dropped["text_mask"], cond["text_mask"])


def synthetic_library(count: int = 6, frames: int = 120) -> Library:
    """Items whose latent level follows their caption's tempo word: something a tiny DiT can learn."""
    rng = np.random.default_rng(0)
    items = []
    for n in range(count):
        tempo, mood = ("fast", "happy") if n % 2 else ("slow", "sad")
        latent = (rng.standard_normal((frames, 128)) * 0.3 + (0.8 if n % 2 else -0.8)).astype(np.float32)
        items.append(LibraryItem(f"item{n}", f"{tempo} {mood} pop music", tempo, mood, 120.0,
                                 rng.standard_normal(embedding_dim(128)).astype(np.float32), latent))
    return Library(items, HashedText())


def test_tiny_trains_and_exports_matching_torch(tmp_path):
    config = replace(CONFIGS["tiny"], steps=40, lr=3e-3, warmup_steps=4, save_every=40)
    result = train(synthetic_library(), tmp_path / "run", config, net_config=tiny())
    losses = [entry["loss"] for entry in result["history"]]
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8
    model = result["model"]
    export(model, tmp_path)
    delta = verify(model, tmp_path)
    assert delta["max_abs_memory"] < 1e-4 and delta["max_abs_v"] < 1e-4, delta


def test_training_resumes_where_it_stopped(tmp_path):
    """Two runs of 3 steps with --resume end with the weights of one run of 6 (same data, same seed)."""
    config = replace(CONFIGS["tiny"], steps=6, save_every=3)
    library = synthetic_library()
    whole = train(library, tmp_path / "whole", config, net_config=tiny())
    train(library, tmp_path / "parts", config, net_config=tiny(), steps=3)
    resumed = train(library, tmp_path / "parts", config, net_config=tiny(), resume=True)
    assert resumed["step"] == 6 and len(resumed["history"]) == 6
    for name, value in whole["model"].state_dict().items():
        torch.testing.assert_close(resumed["model"].state_dict()[name], value)


def test_training_never_retrieves_the_item_itself():
    neighbours = Neighbours.of(synthetic_library(), k=2)
    for i, (broad, target) in enumerate(zip(neighbours.broad, neighbours.target)):
        assert i not in broad and i not in target and len(broad) == 2
        assert all((j % 2) == (i % 2) for j in target)  # same tempo word and mood: the same partition
