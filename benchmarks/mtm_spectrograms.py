"""Log-mel spectrograms of the shipped MTM model for two captions and a paraphrase, beside a real render:
    python benchmarks/mtm_spectrograms.py benchmarks/figures/mtm-minilm-spectrograms.png
"""
import sys
import numpy as np
import librosa
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from cuesmith.engine.pipelines import load_family
from cuesmith.engine.pipelines.mtm.describe import attributes_of
from cuesmith.engine.corpus.audio import corpus_dir
from cuesmith.engine.music.audio import load_audio

out = sys.argv[1]
model = load_family("mtm", None)
texts = ["fast happy major pop music, 132 bpm, piano", "slow sad minor pop music, 72 bpm, piano",
         "a mournful, unhurried ballad"]
panels = []
for seed, text in enumerate(texts):
    latent = model.latents(text, attributes_of(text), 10.0, 1, seed)[0]
    audio = model.codec.decode_latent(latent, int(10.0 * model.codec.sample_rate))
    panels.append((f"MTM ({model.text.name}): {text[:34]}", audio, model.codec.sample_rate))
real = sorted((corpus_dir() / "valid").glob("*.flac"))[0]
a = load_audio(real)
panels.append(("real validation render", a.stereo.mean(axis=1)[: 10 * a.native_rate], a.native_rate))
fig, axes = plt.subplots(1, len(panels), figsize=(16, 3.6))
for ax, (title, audio, rate) in zip(axes, panels):
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=audio.astype(np.float32), sr=rate, n_mels=96,
                                                             hop_length=rate // 50), ref=np.max)
    ax.imshow(mel, origin="lower", aspect="auto", vmin=-80)
    ax.set_title(title, fontsize=9)
fig.tight_layout()
fig.savefig(out, dpi=80)
