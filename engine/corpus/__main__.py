"""`python -m cuesmith.engine.corpus build --songs 1-60,701-716 [--per-song N] [--video]`: render into the cache."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import Optional

from ..errors import CuesmithError
from .audio import CorpusConfig, build, corpus_dir, parse_song_range, plan_variants


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cuesmith.engine.corpus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="render excerpts (and their paired videos) into the user cache")
    b.add_argument("--songs", required=True, help="POP909 numbers, e.g. 1-700,701-800")
    b.add_argument("--per-song", type=int, default=1, help="variants per song")
    b.add_argument("--seconds", type=float, default=CorpusConfig.seconds)
    b.add_argument("--seed", type=int, default=CorpusConfig.seed)
    b.add_argument("--video", action="store_true", help="also write each excerpt's paired video")
    args = parser.parse_args(argv)
    try:
        config = replace(CorpusConfig(), seconds=args.seconds, seed=args.seed)
        variants = plan_variants(parse_song_range(args.songs), args.per_song, config)
        result = build(variants, config, progress=_print_progress)
        if args.video:
            from .video import VideoConfig, build_paired

            for excerpt in result.excerpts:
                build_paired(excerpt, replace(VideoConfig(), seed=args.seed))
    except CuesmithError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(result.excerpts)} excerpts, {result.audio_seconds:.0f} s of audio in {corpus_dir()}; "
          f"rendering {result.cpu_seconds:.1f} CPU s: {result.rate_per_cpu_hour():.0f} s of audio per CPU-hour")
    return 0


def _print_progress(stage: str, fraction: float, _last=[0.0]) -> None:
    if time.monotonic() - _last[0] > 10 or fraction >= 1:
        _last[0] = time.monotonic()
        print(f"{stage}: {fraction:.0%}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
