"""Text encoders: Hugging Face BERT/T5 checkpoints -> torch -> ONNX -> the runtime loader (issue 17)."""
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
tokenizers = pytest.importorskip("tokenizers")

from cuesmith.engine.errors import CuesmithError  # noqa: E402
from cuesmith.engine.nets import text_encoder as te  # noqa: E402
from cuesmith.engine.pipelines.mtm.text import HashedText, OnnxText, SHIPPED, text_encoder  # noqa: E402
from cuesmith.engine.runtime.store import SHIPPED as MODELS  # noqa: E402
from cuesmith.exporters import text_export  # noqa: E402

WORDS = "slow fast sad happy calm piano strings band pop music major minor bpm 72 126 and a with drums".split()
TEXTS = ["slow sad piano", "fast happy pop music with drums", "calm strings", "major pop music 126 bpm and band"]
TINY = {
    "bert": {"model_type": "bert", "vocab_size": len(WORDS) + 4, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 40, "type_vocab_size": 2},
    "t5-relu": {"model_type": "t5", "vocab_size": len(WORDS) + 4, "d_model": 32, "d_kv": 8, "d_ff": 48,
                "num_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 8,
                "relative_attention_max_distance": 16, "feed_forward_proj": "relu"},
    "t5-gated": {"model_type": "t5", "vocab_size": len(WORDS) + 4, "d_model": 32, "d_kv": 8, "d_ff": 48,
                 "num_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 8,
                 "relative_attention_max_distance": 16, "feed_forward_proj": "gated-gelu"},
}


def write_tokenizer(path):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer.save(str(path))


def hf_checkpoint(folder, which, rename=lambda key: key, seed=0):
    """A random tiny encoder saved as Hugging Face publishes one: config.json, model.safetensors (HF key
    names, plus keys an encoder ignores), tokenizer.json. Returns the torch encoder."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = TINY[which]
    torch.manual_seed(seed)
    encoder = te.build(te.config_from_json(config)).eval()
    for p in encoder.parameters():  # LayerNorm's ones and zeros would hide a swapped weight/bias
        torch.nn.init.normal_(p, std=0.3)
    table = te.BERT_KEYS if which == "bert" else te.T5_KEYS
    weights = {rename(te.hf_key(k, table)): v.contiguous() for k, v in encoder.state_dict().items()}
    weights[rename("pooler.dense.weight" if which == "bert" else "decoder.final_layer_norm.weight")] = torch.ones(4)
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    write_tokenizer(folder / "tokenizer.json")
    return encoder


@pytest.mark.parametrize("which", sorted(TINY))
def test_exported_encoder_matches_torch_and_the_runtime_pools_like_torch(tmp_path, which, monkeypatch):
    source = hf_checkpoint(tmp_path / "hf", which)
    loaded = te.load(tmp_path / "hf")
    ids = torch.tensor([[2, 5, 6, 3]])
    torch.testing.assert_close(loaded(ids, torch.ones_like(ids)), source(ids, torch.ones_like(ids)))
    out = tmp_path / "models" / "text" / f"tiny-{which}"
    manifest = text_export.package(tmp_path / "hf", out, f"tiny-{which}", 16, "test", int8=False, texts=TEXTS)
    assert manifest["kind"] == ("bert" if which == "bert" else "t5") and manifest["dim"] == 32
    assert manifest["verification"]["fp32"]["max_abs_states"] < 1e-4  # batched with padding, other lengths
    monkeypatch.setenv("CUESMITH_MODELS", str(tmp_path / "models"))
    runtime = text_encoder({"name": f"tiny-{which}", "dim": 32, "max_tokens": 16})
    assert isinstance(runtime, OnnxText) and runtime.spec()["kind"] == manifest["kind"]
    for text in TEXTS:
        encoded = runtime.tokenizer.encode(text)
        ids, mask = torch.tensor([encoded.ids]), torch.ones(1, len(encoded.ids), dtype=torch.long)
        with torch.no_grad():
            states = source(ids, mask)
        tokens, token_mask = runtime.tokens(text)
        assert token_mask.sum() == len(encoded.ids) and not tokens[len(encoded.ids):].any()
        assert np.abs(tokens[:len(encoded.ids)] - states[0].numpy()).max() < 1e-4
        assert np.abs(runtime.sentence(text) - te.mean_pool(states, mask)[0].numpy()).max() < 1e-5


def test_a_zipped_checkpoint_reads_like_a_folder(tmp_path):
    hf_checkpoint(tmp_path / "hf", "bert")
    with zipfile.ZipFile(tmp_path / "model.zip", "w") as archive:
        for path in (tmp_path / "hf").iterdir():
            archive.write(path, f"model/{path.name}")
        archive.writestr("model/1_Pooling/config.json", "{}")  # sentence-transformers' deeper config
    a, b = te.load(tmp_path / "hf"), te.load(tmp_path / "model.zip")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, msg=name)


def test_int8_ships_only_when_pooled_cosine_holds(tmp_path):
    hf_checkpoint(tmp_path / "hf", "bert")
    manifest = text_export.package(tmp_path / "hf", tmp_path / "out", "tiny", 16, "test", texts=TEXTS)
    report = manifest["verification"]["int8"]
    holds = any(t["min_pooled_cosine"] >= text_export.INT8_MIN_COSINE for t in report["tried"])
    assert report["shipped"] == holds
    assert manifest["graph"] == (text_export.INT8 if holds else text_export.FP32)
    assert (tmp_path / "out" / manifest["graph"]).is_file() and set(manifest["files"]) <= {
        p.name for p in (tmp_path / "out").iterdir()}


def test_key_format_errors_say_what_is_missing(tmp_path):
    hf_checkpoint(tmp_path / "renamed", "bert", rename=lambda key: "foo." + key)
    with pytest.raises(CuesmithError, match=r"not a bert state dict in the Hugging Face key format: missing "
                                            r"'embeddings\.word_embeddings\.weight' and \d+ more"):
        te.load(tmp_path / "renamed")
    hf_checkpoint(tmp_path / "prefixed", "bert", rename=lambda key: "bert." + key)  # BertForX: accepted
    te.load(tmp_path / "prefixed")
    hf_checkpoint(tmp_path / "wrong", "t5-relu")
    config = json.loads((tmp_path / "wrong" / "config.json").read_text())
    (tmp_path / "wrong" / "config.json").write_text(json.dumps({**config, "d_ff": 50}))
    with pytest.raises(CuesmithError, match=r"t5 weights do not fit config.json: .*DenseReluDense.wi.weight"):
        te.load(tmp_path / "wrong")
    (tmp_path / "wrong" / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    with pytest.raises(CuesmithError, match="model_type 'gpt2' is not supported"):
        te.load(tmp_path / "wrong")
    (tmp_path / "wrong" / "model.safetensors").unlink()
    with pytest.raises(CuesmithError, match="no model.safetensors or pytorch_model.bin"):
        te.read_checkpoint(tmp_path / "wrong")


def test_the_loader_picks_the_encoder_the_spec_names(tmp_path, monkeypatch):
    hashed = text_encoder({"name": "hashed-bow-v1", "dim": 48, "max_tokens": 8})
    assert isinstance(hashed, HashedText) and (hashed.dim, hashed.max_tokens) == (48, 8)
    shipped = text_encoder({"name": SHIPPED, "max_tokens": 32})
    assert isinstance(shipped, OnnxText) and shipped.spec() == {"name": SHIPPED, "kind": "bert", "dim": 384,
                                                               "max_tokens": 32}
    with pytest.raises(CuesmithError, match="384-wide tokens; the model wants 64"):
        text_encoder({"name": SHIPPED, "dim": 64, "max_tokens": 32})
    monkeypatch.setenv("CUESMITH_MODELS", str(tmp_path))
    with pytest.raises(CuesmithError, match="model text/t5-mine is missing"):
        text_encoder({"name": "t5-mine", "dim": 512, "max_tokens": 32})


def test_the_shipped_encoder_knows_synonyms():
    text = text_encoder({"name": SHIPPED, "max_tokens": 32})
    melancholic = text.sentence("melancholic slow piano")
    assert melancholic @ text.sentence("sad slow piano") > melancholic @ text.sentence("happy fast piano")
    hashed = HashedText()  # the stand-in it replaces shares only "slow piano" with both
    assert hashed.sentence("melancholic slow piano") @ hashed.sentence("sad slow piano") < 0.9
    manifest = json.loads((MODELS / "text" / SHIPPED / "manifest.json").read_text())
    assert (MODELS / "text" / SHIPPED / manifest["graph"]).stat().st_size < 25e6
    assert "Apache-2.0" in (MODELS / "text" / SHIPPED / "NOTICE").read_text()


def test_the_runtime_encoder_imports_no_torch():
    code = ("import sys; from cuesmith.engine.pipelines.mtm.text import text_encoder; "
            f"t = text_encoder({{'name': '{SHIPPED}', 'max_tokens': 32}}); t.tokens('slow sad piano'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
