"""The `cuesmith` command: a thin layer over `Engine`.

Every subcommand prints a short human summary, can write its full result as
JSON, shows progress on a terminal, and turns a `CuesmithError` into one line
on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional

from .errors import CuesmithError
from .files import write_json_atomic
from .progress import TerminalProgress

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


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

    inspect = sub.add_parser("inspect", help="tempo map, metre, key, chords, beats and parts of a MIDI file")
    inspect.add_argument("music", type=Path, metavar="MUSIC.mid")
    inspect.add_argument("--json", type=Path, metavar="PATH", help="write the full result here")
    return parser


@command("analyze")
def run_analyze(args: argparse.Namespace) -> int:
    from .api import Engine

    bar = TerminalProgress()
    try:
        analysis = Engine(use_cache=not args.no_cache).analyze(
            args.video, start=args.start, end=args.end, progress=bar)
    finally:
        bar.close()
    print(analysis.summary())
    if args.json:
        write_json_atomic(args.json, analysis.to_dict())
        print(f"wrote {args.json}")
    return 0


@command("inspect")
def run_inspect(args: argparse.Namespace) -> int:
    from .music.inspect import inspect_file

    if args.json is not None and args.json.is_dir():
        raise CuesmithError("is a folder; --json needs a file path", args.json)
    result = inspect_file(args.music)
    print(result.summary())
    if args.json:
        write_json_atomic(args.json, result.to_dict())
        print(f"wrote {args.json}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CuesmithError as error:
        print(f"cuesmith {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"cuesmith {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
