"""`cuesmith codec encode IN --out tokens.npz` and `cuesmith codec decode tokens.npz --out OUT.wav`.

The token file (.npz) holds `codes` (4, T) int16 at 50 Hz, `samples` (the audio's
length at 32 kHz), `sample_rate`, `model` (the codec's id) and, with --latent,
`latent` (T, D) float16, the continuous latent before quantisation. Decoding
writes 32 kHz mono 24-bit WAV. Outputs never replace a file: a taken name gets
-2, -3, ...
"""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np

from ..errors import CuesmithError
from ..files import atomic_path, unused_path
from ..progress import TerminalProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    encode = sub.add_parser("encode", help="audio file -> codec tokens (.npz)")
    encode.add_argument("audio", type=Path, help="any audio file PyAV reads (wav, flac, mp3, ...)")
    encode.add_argument("--out", type=Path, required=True, metavar="TOKENS.npz")
    encode.add_argument("--latent", action="store_true", help="also store the continuous latent")
    decode = sub.add_parser("decode", help="codec tokens (.npz) -> 32 kHz WAV")
    decode.add_argument("tokens", type=Path, metavar="TOKENS.npz")
    decode.add_argument("--out", type=Path, required=True, metavar="OUT.wav")
    decode.add_argument("--from-latent", action="store_true", help="decode the stored latent, not the tokens")
    decode.add_argument("--vocoder", choices=("vocos", "griffin-lim"),
                        help="the learned vocoder or Griffin-Lim (default: the model's choice)")
    for p in (encode, decode):
        p.add_argument("--model", type=Path, metavar="DIR", help="a codec model folder (default: the shipped one)")
        p.add_argument("--int8", action="store_true", help="run the int8 graphs the model ships")


def main(args: argparse.Namespace) -> int:
    return encode(args) if args.action == "encode" else decode(args)


def encode(args: argparse.Namespace) -> int:
    from ..music.audio import load_audio
    from .runtime import Codec

    out = output_path(args.out, ".npz")
    audio = load_audio(args.audio)
    codec = Codec.load(args.model, int8=args.int8)
    bar = TerminalProgress()
    try:
        encoded = codec.encode(audio.stereo, audio.native_rate, bar)
    finally:
        bar.close()
    arrays = {"codes": encoded.codes.astype(np.int16), "samples": np.int64(encoded.samples),
              "sample_rate": np.int64(codec.sample_rate), "model": np.str_(codec.model.manifest.get("id", ""))}
    if args.latent:
        arrays["latent"] = encoded.latent.astype(np.float16)
    with atomic_path(out) as tmp, tmp.open("wb") as f:
        np.savez_compressed(f, **arrays)
    seconds = encoded.samples / codec.sample_rate
    print(f"wrote {out}: {encoded.codes.shape[1]} tokens x {encoded.codes.shape[0]} codebooks "
          f"for {seconds:.2f} s")
    return 0


def decode(args: argparse.Namespace) -> int:
    from ..music.render import write_wav
    from .runtime import Codec

    out = output_path(args.out, ".wav")
    stored = read_tokens(args.tokens, args.from_latent)
    codec = Codec.load(args.model, int8=args.int8, vocoder=args.vocoder)
    bar = TerminalProgress()
    try:
        if args.from_latent:
            audio = codec.decode_latent(stored["latent"].astype(np.float32), stored["samples"], bar)
        else:
            audio = codec.decode_codes(stored["codes"], stored["samples"], bar)
    finally:
        bar.close()
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    write_wav(audio, out, codec.sample_rate, gain=min(1.0, 0.99 / peak) if peak > 0.99 else 1.0)
    print(f"wrote {out}: {len(audio) / codec.sample_rate:.2f} s at {codec.sample_rate} Hz "
          f"({codec.vocoder.name} vocoder)")
    return 0


def output_path(path: Path, suffix: str) -> Path:
    if path.is_dir():
        raise CuesmithError(f"is a folder; --out needs a {suffix} file path", path)
    if path.suffix.lower() != suffix:
        raise CuesmithError(f"--out should end in {suffix}", path)
    return unused_path(path)


def read_tokens(path: Path, need_latent: bool) -> dict:
    if not path.is_file():
        raise CuesmithError("no such token file", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        raise CuesmithError("not a token file (.npz written by `cuesmith codec encode`)", path) from None
    key = "latent" if need_latent else "codes"
    if key not in stored:
        hint = "encode with --latent" if need_latent else "write it with `cuesmith codec encode`"
        raise CuesmithError(f"holds no {key!r} array", path, hint=hint)
    array = stored[key]
    if array.ndim != 2 or (key == "codes" and not np.issubdtype(array.dtype, np.integer)):
        raise CuesmithError(f"{key!r} has shape {array.shape} and type {array.dtype}, not a 2-D array of "
                            f"{'integers' if key == 'codes' else 'floats'}", path)
    samples = stored.get("samples")
    stored["samples"] = int(samples) if samples is not None and samples.ndim == 0 else None
    return stored
