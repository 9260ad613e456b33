"""The `cuesmith` command: a thin layer over `Engine`.

Every subcommand prints a short human summary, can write its full result as
JSON, shows progress on a terminal, and turns a `CuesmithError` into one line
on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Optional

from .errors import CuesmithError
from .files import undone_on_failure, unused_path, write_json_atomic
from .progress import TerminalProgress

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}

# Commands that live with the room they belong to: each module has
# `add_arguments(parser)` and `main(args) -> int`, imported only when used.
ROOM_COMMANDS = {
    "serve": ("cuesmith.plugin_bridge.server", "run the engine service: OSC over UDP/TCP and WebSocket"),
    "send": ("cuesmith.plugin_bridge.client", "send one request to a running engine and print its replies"),
    "hosts": ("cuesmith.plugin_bridge.hosts", "install the Resolve, Premiere, Reaper and Ableton scripts"),
    "panel": ("cuesmith.gui.panel", "open the side panel (PyQt6)"),
    "codec": ("cuesmith.engine.codec.cli", "encode audio to codec tokens, or decode tokens to a WAV"),
}


def command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = fn
        return fn
    return register


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="cuesmith", description="Score video locally.")
    parser.add_argument("--version", action="version", version=f"cuesmith {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="cuts, motion, colour and tempo range of a video clip")
    analyze.add_argument("video", type=Path)
    analyze.add_argument("--json", type=Path, metavar="PATH", help="write the full result here")
    analyze.add_argument("--start", type=float, metavar="S", help="clip start in seconds")
    analyze.add_argument("--end", type=float, metavar="S", help="clip end in seconds")
    analyze.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    analyze.add_argument("--with-chroma", action="store_true", help="--json includes the log-chroma histograms")

    inspect = sub.add_parser("inspect", help="tempo, key, beats (and chords, parts for MIDI) of a MIDI or audio file")
    inspect.add_argument("music", type=Path, metavar="MUSIC", help="a MIDI file or any audio file (wav, mp3, m4a, ...)")
    inspect.add_argument("--json", type=Path, metavar="PATH", help="write the full result here")

    critique = sub.add_parser("critique", help="how well music fits a clip, in HarmonySet's four dimensions")
    critique.add_argument("video", type=Path, nargs="?")
    critique.add_argument("--music", type=Path, metavar="FILE",
                          help="MIDI or audio to judge (default: the clip's own audio track)")
    critique.add_argument("--out", type=Path, metavar="DIR", help="write critique.json and critique.md here")
    critique.add_argument("--notes", default="", metavar="TEXT", help="what the clip is about (theme/culture evidence)")
    critique.add_argument("--llm", type=Path, metavar="MODEL.gguf",
                          help="write the prose with this local GGUF model (default: config file, else template)")
    critique.add_argument("--llm-help", action="store_true", help="where to find suitable GGUF models, then exit")
    critique.add_argument("--start", type=float, metavar="S", help="clip start in seconds")
    critique.add_argument("--end", type=float, metavar="S", help="clip end in seconds")

    describe = sub.add_parser("describe", help="a music-video description of a piece of music, and cuts on its beats")
    describe.add_argument("music", type=Path, metavar="MUSIC", help="a MIDI file or any audio file")
    describe.add_argument("--lyrics", type=Path, metavar="FILE", help="lyrics: .lrc with times, or plain text")
    describe.add_argument("--tags", default="", metavar="TEXT", help='genre / MV type / other tags, e.g. "ballad, story narrative"')
    describe.add_argument("--llm", type=Path, metavar="MODEL.gguf", help="write the prose with this local GGUF model")
    describe.add_argument("--fps", type=float, default=30.0, help="frame rate of cuts.otio/cuts.edl (default 30)")
    describe.add_argument("--out", type=Path, required=True, metavar="DIR",
                          help="write description.json/.md and cuts.otio/.edl here (existing files are never replaced)")

    score = sub.add_parser("score", help="MIDI (chords, melody, accompaniment) and stems for a video clip")
    score.add_argument("video", type=Path, nargs="?")
    score.add_argument("--timeline", type=Path, metavar="FILE",
                       help="score a timeline (EDL, FCP7 XML, FCPXML, .otio): clip boundaries are cuts")
    score.add_argument("--media-dir", type=Path, metavar="DIR",
                       help="folder to look for a timeline's media in (by file, clip or reel name)")
    score.add_argument("--rate", type=float, metavar="FPS",
                       help="an EDL's frame rate (default: its first clip's media)")
    score.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="output folder (existing files are never replaced)")
    score.add_argument("--variations", type=int, default=1, metavar="N", help="variations, one batch (default 1)")
    score.add_argument("--keep-best", action="store_true",
                       help="critique every variation against the clip and keep only the best (critique + soundness)")
    score.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed (default 0)")
    score.add_argument("--tempo", type=float, metavar="BPM", help="tempo (default: from the motion)")
    score.add_argument("--mode", choices=("major", "minor"), help="mode (default: from the colour)")
    score.add_argument("--density", choices=("low", "mid", "high"), help="note density (default: from the motion)")
    score.add_argument("--start", type=float, metavar="S", help="clip start in seconds")
    score.add_argument("--end", type=float, metavar="S", help="clip end in seconds")
    score.add_argument("--temperature", type=float, help="every stage's (default: the model's, per stage)")
    score.add_argument("--top-k", type=int, default=0)
    score.add_argument("--top-p", type=float, help="every stage's (default: the model's, per stage)")
    precision = score.add_mutually_exclusive_group()
    precision.add_argument("--int8", dest="int8", action="store_true", default=None,
                           help="run the int8 decoders (default: the model's own choice)")
    precision.add_argument("--fp32", dest="int8", action="store_false", help="run the fp32 decoders")
    score.add_argument("--no-stems", action="store_true", help="write MIDI only")
    score.add_argument("--models", type=Path, metavar="DIR", help="a model folder of the family to use")
    score.add_argument("--family", default="vmusprod", help="the model family (vmusprod, mtm, ...)")
    score.add_argument("--describe", metavar="TEXT",
                       help="the music description for a text-prompted family (mtm) instead of its own; "
                            "result.json's variations[].description holds the one used")

    for name, (_, help_text) in ROOM_COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # its own parser reads the rest
    return parser


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    """The built-in commands parse here; a room's command parses the rest with the room's own parser."""
    import importlib

    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command not in ROOM_COMMANDS:
        return parser.parse_args(argv)  # unknown arguments are an error, as usual
    module, help_text = ROOM_COMMANDS[args.command]
    room = argparse.ArgumentParser(prog=f"cuesmith {args.command}", description=help_text)
    importlib.import_module(module).add_arguments(room)
    room_args = room.parse_args(rest)
    room_args.command, room_args.room_module = args.command, module
    return room_args


@command("score")
def run_score(args: argparse.Namespace) -> int:
    from .api import Engine
    from .schema import ScoreRequest

    if (args.video is None) == (args.timeline is None):
        raise CuesmithError("give a VIDEO or --timeline FILE (one of them)")
    if args.timeline is not None and (args.start is not None or args.end is not None):
        raise CuesmithError("--start/--end apply to a VIDEO; a timeline's clips carry their own ranges")
    source = ({"video": str(args.video)} if args.timeline is None else
              {"timeline": str(args.timeline), "rate": args.rate,
               "media_dir": str(args.media_dir) if args.media_dir else None})
    request = ScoreRequest(**source, out_dir=str(args.out), variations=args.variations, keep_best=args.keep_best,
                           seed=args.seed, tempo=args.tempo, mode=args.mode, density=args.density,
                           start=args.start, end=args.end, temperature=args.temperature, top_k=args.top_k,
                           top_p=args.top_p, int8=args.int8, stems=not args.no_stems, family=args.family,
                           describe=args.describe)
    bar = TerminalProgress()
    out_existed = args.out.exists()
    try:
        with undone_on_failure():  # a failed score leaves none of its files
            engine = Engine(model_dir=args.models)
            result = engine.save(engine.score(request.validate(), progress=bar), progress=bar)
            if args.timeline is not None:
                from .timeline import write_scored_timeline

                written = write_scored_timeline(args.timeline, result, args.out, media_dir=args.media_dir,
                                                rate=args.rate)
    except BaseException:
        if not out_existed:
            remove_if_empty(args.out)
        raise
    finally:
        bar.close()
    print(result.summary())
    print(f"wrote {result.result_json}")
    if args.timeline is not None:
        print(f"wrote {written}")
    return 0


def remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


@command("analyze")
def run_analyze(args: argparse.Namespace) -> int:
    from .api import Engine

    check_json_path(args.json)
    bar = TerminalProgress()
    try:
        analysis = Engine(use_cache=not args.no_cache).analyze(
            args.video, start=args.start, end=args.end, progress=bar)
    finally:
        bar.close()
    return show(analysis.including_chroma() if args.with_chroma else analysis, args.json)


@command("inspect")
def run_inspect(args: argparse.Namespace) -> int:
    from .music.inspect import inspect_file

    check_json_path(args.json)
    return show(inspect_file(args.music), args.json)  # an Inspection (MIDI) or an AudioAnalysis


def check_json_path(path: Optional[Path]) -> None:
    if path is not None and path.is_dir():
        raise CuesmithError("is a folder; --json needs a file path", path)


def show(result, json_path: Optional[Path]) -> int:
    """With --json, write the result's full dict there (an existing file is never replaced: the next free
    name, as `score` does), then print its summary."""
    written = write_json_atomic(unused_path(json_path), result.to_dict()) if json_path else None
    print(result.summary())
    if written is not None:
        print(f"wrote {written}" + (f" ({json_path} exists: not replaced)" if written != json_path else ""))
    return 0


@command("critique")
def run_critique(args: argparse.Namespace) -> int:
    from .critique.prose import LLM_HELP

    if args.llm_help:
        print(LLM_HELP)
        return 0
    if args.video is None:
        raise CuesmithError("give a VIDEO to critique (or --llm-help)")
    from .api import Engine

    bar = TerminalProgress()
    try:
        result = Engine().critique(args.video, music=args.music, notes=args.notes,
                                   llm=args.llm, start=args.start, end=args.end, progress=bar)
    finally:
        bar.close()
    print(critique_summary(result))
    if args.out:
        from .critique import write_critique

        with undone_on_failure():  # not critique.json without its critique.md
            json_path, md_path = write_critique(result, args.out)
        print(f"wrote {json_path} and {md_path}")
    return 0


@command("describe")
def run_describe(args: argparse.Namespace) -> int:
    from .api import Engine

    if args.out.exists() and not args.out.is_dir():
        raise CuesmithError("exists and is not a folder", args.out)
    if not 1.0 <= args.fps <= 240.0:
        raise CuesmithError(f"--fps must be 1..240, got {args.fps:g}")
    bar = TerminalProgress()
    try:
        description = Engine().describe(args.music, lyrics=args.lyrics, tags=args.tags, llm=args.llm, progress=bar)
    finally:
        bar.close()
    files = description.save(args.out, fps=args.fps)
    print(description.summary())
    print("wrote " + ", ".join(str(p) for p in (files.json, files.markdown, files.otio, files.edl) if p))
    return 0


def critique_summary(critique) -> str:
    lines = [f"{Path(critique.video).name} with {Path(critique.music).name}: overall "
             + (f"{critique.overall:.1f}/10" if critique.overall is not None else "not scored")]
    for d in critique.dimensions:
        score = f"{d.score:.1f}/10" if d.score is not None else "not assessed"
        lines.append(f"  {d.name:<8} {score:<13} " + "; ".join(f"{k}: {v}" for k, v in d.labels.items()))
    lines.append(f"  key moments: {critique.harmonyset_key_moments}")
    if critique.soundness:
        lines.append(f"  soundness: {critique.soundness['verdict']} ({critique.soundness['score']:.2f})")
    lines += [f"  could not assess: {p}" for p in critique.problems]
    if critique.prose_note:
        lines.append(f"  prose: {critique.prose_note}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if getattr(args, "room_module", None):
            import importlib

            return importlib.import_module(args.room_module).main(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except CuesmithError as error:
        print(f"cuesmith {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # `cuesmith analyze x.mp4 | head`: the reader left; files are written already
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush stays quiet
        return 141  # what a shell reports for a command ended by SIGPIPE
    except OSError as error:  # a file the engine could not write or read, not turned into a CuesmithError
        where = f"{error.filename}: " if error.filename else ""
        print(f"cuesmith {args.command}: {where}{error.strerror or error}", file=sys.stderr)
        return CuesmithError.exit_code
    except KeyboardInterrupt:
        print(f"cuesmith {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
