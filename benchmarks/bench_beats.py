"""Beat tracking on POP909 validation songs 701-800 rendered to audio, against beat_midi.txt.

Each song's MIDI is rendered with the default SoundFont (music.render) at
`RENDER_RATE` and cached as FLAC in the cuesmith cache folder; both trackers
read the same file. Scores: mir_eval F-measure (±70 ms) and AMLt. The
baseline is librosa's default `beat_track`; ours is `music.audio.track_beats`
(tuned only on renders of 001-700: see its docstring).

`python benchmarks/bench_beats.py fit` refits music/beat_tempo.json on renders
of `TRAIN_SONGS` (210 songs of 001-700) and prints its accuracy there.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

TITLE = "Beat tracking (POP909 701-800 rendered to audio, mir_eval F-measure and AMLt)"
RENDER_RATE = 22_050


def render_dir() -> Path:
    from cuesmith.engine.video.analysis import cache_dir

    return cache_dir() / "pop909-renders"


def rendered(number: int) -> Path:
    """The cached render of POP909 song `number` (rendered on first use)."""
    import soundfile

    from cuesmith.engine.music import pop909
    from cuesmith.engine.music.midi_io import read_midi
    from cuesmith.engine.music.render import render_audio

    path = render_dir() / f"{number:03d}.flac"
    if not path.exists():
        song = read_midi(pop909.song_dir(number) / f"{number:03d}.mid")
        audio = render_audio(song, sample_rate=RENDER_RATE)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.flac")
        soundfile.write(tmp, audio.mix.mean(axis=1), RENDER_RATE, subtype="PCM_16")
        tmp.replace(path)
    return path


def reference_beats(number: int) -> np.ndarray:
    from cuesmith.engine.music import pop909

    return np.array([t for t, _ in pop909.read_beats(pop909.song_dir(number) / "beat_midi.txt")])


def scores(reference: np.ndarray, estimated: np.ndarray) -> tuple[float, float]:
    import mir_eval

    ref = mir_eval.beat.trim_beats(reference)
    est = mir_eval.beat.trim_beats(np.asarray(estimated, dtype=float))
    f = mir_eval.beat.f_measure(ref, est)
    amlt = mir_eval.beat.continuity(ref, est)[3]
    return f, amlt


def librosa_default(path: Path) -> np.ndarray:
    import librosa

    y, sr = librosa.load(path, sr=RENDER_RATE)
    _, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return beats


def ours(path: Path) -> np.ndarray:
    from cuesmith.engine.music.audio import load_audio, track_beats

    audio = load_audio(path)
    return track_beats(audio).beats


# -- fitting the tempo model (music.audio.TempoModel) on the training split only -------------

TRAIN_SONGS = [n for n in range(1, 701) if n % 10 in (0, 3, 5)]  # 210 of POP909 001-700
TEMPO_TOLERANCE = 0.04  # a grid tempo within ±4% of the annotated one counts as right
# L2 on the weights. 4-fold cross-validation on TRAIN_SONGS picked it and the envelopes: tempo right
# on 85.7% (onset envelope alone), 88.6% (+ bass), 88.1% (+ bass + chroma flux) of the held-out songs.
FIT_REGULARISATION = 1e-4
MODEL_TEMPLATE = dict(envelopes=("onset", "bass"),
                      harmonics=(0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
                      prior_centres_bpm=(45, 55, 65, 75, 90, 105, 120, 140, 170), prior_width_octaves=0.2)


def reference_tempo(number: int) -> float:
    return float(60.0 / np.median(np.diff(reference_beats(number))))


def tempo_examples(songs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per song: the tempo features over the grid, and which grid tempi are right."""
    from cuesmith.engine.music.audio import TEMPO_GRID_BPM, TempoModel, beat_envelopes, load_audio, tempo_features

    template = TempoModel(**MODEL_TEMPLATE)
    features, right = [], []
    for number in songs:
        features.append(tempo_features(beat_envelopes(load_audio(rendered(number)).mono), template))
        right.append(np.abs(np.log(TEMPO_GRID_BPM / reference_tempo(number))) < np.log1p(TEMPO_TOLERANCE))
    return features, right


def _loss(weights, features, right, regularisation):
    """Mean negative log-probability of the right tempi under a softmax over the grid, and its gradient."""
    total, gradient = 0.0, np.zeros_like(weights)
    for x, ok in zip(features, right):
        score = x @ weights
        p = np.exp(score - score.max())
        p /= p.sum()
        p_right = p[ok].sum() + 1e-12
        total -= np.log(p_right)
        gradient -= x.T @ (np.where(ok, p, 0.0) / p_right - p)
    n = len(features)
    return total / n + regularisation * weights @ weights, gradient / n + 2 * regularisation * weights


def fit_weights(features, right, regularisation: float = FIT_REGULARISATION) -> np.ndarray:
    from scipy.optimize import minimize

    start = np.zeros(features[0].shape[1])
    return minimize(_loss, start, args=(features, right, regularisation), jac=True, method="L-BFGS-B").x


def tempo_accuracy(weights, features, right) -> float:
    return float(np.mean([ok[int(np.argmax(x @ weights))] for x, ok in zip(features, right)]))


def cross_validated_accuracy(features, right, folds: int = 4) -> float:
    hits = []
    for k in range(folds):
        train = [i for i in range(len(features)) if i % folds != k]
        weights = fit_weights([features[i] for i in train], [right[i] for i in train])
        hits += [right[i][int(np.argmax(features[i] @ weights))] for i in range(k, len(features), folds)]
    return float(np.mean(hits))


def fit_tempo_model(songs=TRAIN_SONGS) -> dict:
    """Fit on renders of `songs` (training split only) and write music/beat_tempo.json."""
    from cuesmith.engine.files import write_json_atomic
    from cuesmith.engine.music import pop909
    from cuesmith.engine.music.audio import TEMPO_MODEL_PATH

    if set(songs) & set(pop909.VALID_SONGS):
        raise ValueError("fit the tempo model on the training split (001-700) only")
    features, right = tempo_examples(songs)
    cross = cross_validated_accuracy(features, right)
    weights = fit_weights(features, right)
    model = {**{k: list(v) if isinstance(v, tuple) else v for k, v in MODEL_TEMPLATE.items()},
             "weights": [round(float(w), 5) for w in weights],
             "fitted_on": (f"benchmarks/bench_beats.py fit: softmax over the tempo grid, L2 {FIT_REGULARISATION}, "
                           f"on renders of {len(songs)} POP909 training songs (001-700, number % 10 in 0, 3, 5); "
                           f"right tempo (±{TEMPO_TOLERANCE:.0%}) on {tempo_accuracy(weights, features, right):.1%} "
                           f"of them, {cross:.1%} in 4-fold cross-validation")}
    write_json_atomic(TEMPO_MODEL_PATH, model)
    return model


def evaluate(songs, trackers) -> dict:
    results = {name: [] for name in trackers}
    for number in songs:
        path = rendered(number)
        reference = reference_beats(number)
        for name, track in trackers.items():
            started = time.perf_counter()
            estimated = track(path)
            results[name].append((*scores(reference, estimated), time.perf_counter() - started))
    return {name: np.array(rows) for name, rows in results.items()}


def run() -> str:
    from cuesmith.engine.music import pop909
    from cuesmith.engine.music.audio import tempo_model

    songs = list(pop909.VALID_SONGS)
    results = evaluate(songs, {"librosa beat_track (default, baseline)": librosa_default,
                               "cuesmith track_beats": ours})
    rows = ["| tracker | songs | F-measure | AMLt | s/song |", "| --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        rows.append(f"| {name} | {len(r)} | {r[:, 0].mean():.3f} | {r[:, 1].mean():.3f} | {r[:, 2].mean():.2f} |")
    base, mine = results.values()
    return ("Renders: the POP909 MIDI through the default SoundFont, mono, "
            f"{RENDER_RATE} Hz. Reference: beat_midi.txt. Goal: ≥ 0.85 F and AMLt.\n\n" + "\n".join(rows)
            + f"\n\nours / librosa: F ×{mine[:, 0].mean() / base[:, 0].mean():.2f}, "
            f"AMLt ×{mine[:, 1].mean() / base[:, 1].mean():.2f}. Tempo model: {tempo_model().fitted_on}.")


if __name__ == "__main__":
    if sys.argv[1:] == ["fit"]:  # refit music/beat_tempo.json on the training split
        print(fit_tempo_model()["fitted_on"])
    elif sys.argv[1:] == ["render"]:  # warm the render cache for the validation songs
        from cuesmith.engine.music import pop909

        for n in pop909.VALID_SONGS:
            rendered(n)
    else:
        print(run())
