"""MTM's DiT: the ControlFormer's zero-init property, condition dropout, a few training steps, ONNX export."""
import pytest

torch = pytest.importorskip("torch")

from cuesmith.engine.nets.mtm import MTMDiT, tiny  # noqa: E402
from cuesmith.engine.training.mtm import train  # noqa: E402
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


def test_tiny_trains_and_exports_matching_torch(tmp_path):
    model = MTMDiT(tiny())
    latent = torch.randn(4, 16, model.config.latent_dim) * 0.5 + 0.3
    _, _, cond = inputs(model)
    cond = {k: v.repeat(2, *([1] * (v.dim() - 1))) for k, v in cond.items()}
    cond["control"] = torch.randn(4, 16, model.config.latent_dim)
    model, losses = train(tiny(), [{"latent": latent, **cond}], steps=30, lr=3e-3, seed=0)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    export(model, tmp_path)
    delta = verify(model, tmp_path)
    assert delta["max_abs_memory"] < 1e-4 and delta["max_abs_v"] < 1e-4, delta
