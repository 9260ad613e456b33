"""Put a cuesmith score into Ableton Live through AbletonOSC (github.com/ideoforms/AbletonOSC, UDP 11000).

    python -m cuesmith.plugin_bridge.hosts.ableton_osc RESULT.json [--track 0] [--slot 0] [--variation 1]

Sets Live's tempo to the score's (result.json's placement), then writes each
part of the chosen variation's MIDI (melody, accompaniment, chords) as a MIDI
clip on its own track: part k on track `--track` + k, clip slot `--slot`
(those tracks must exist and be MIDI tracks). Notes keep their beat positions
(MIDI ticks / PPQ), so the clip lines up with the picture when launched, or
recorded into the arrangement, at the video's start. A family that writes
audio only has no MIDI: the tempo is set and the audio files to drag into Live
are printed.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ...engine.errors import CuesmithError

NOTES_PER_MESSAGE = 40  # 5 values a note: keeps each datagram well under 1.4 KB


@dataclass
class Part:
    name: str
    notes: list[tuple[int, float, float, int]] = field(default_factory=list)  # pitch, start beat, beats, velocity


def read_parts(midi_path: str | Path) -> list[Part]:
    """The named tracks of a cuesmith MIDI file that hold notes, in beats."""
    import mido

    try:
        midi = mido.MidiFile(str(midi_path))
    except (OSError, ValueError, EOFError) as error:
        raise CuesmithError(f"cannot read the MIDI: {error}", midi_path) from None
    parts = []
    for track in midi.tracks:
        part, tick, sounding = Part(track.name or f"part {len(parts) + 1}"), 0, {}
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding.setdefault((message.channel, message.note), []).append((tick, message.velocity))
            elif message.type in ("note_off", "note_on") and sounding.get((message.channel, message.note)):
                start, velocity = sounding[(message.channel, message.note)].pop(0)  # first on, first off
                part.notes.append((message.note, start / midi.ticks_per_beat, (tick - start) / midi.ticks_per_beat,
                                   velocity))
        if part.notes:
            parts.append(part)
    return parts


def messages(tempo: float, parts: list[Part], track: int, slot: int) -> list[tuple[str, list]]:
    """The AbletonOSC messages that write the parts, in order."""
    out: list[tuple[str, list]] = [("/live/song/set/tempo", [float(tempo)])]
    for k, part in enumerate(parts):
        length = max(start + beats for _, start, beats, _ in part.notes)
        bars = -(-length // 4) * 4  # whole 4-beat bars
        out.append(("/live/clip_slot/create_clip", [track + k, slot, float(bars)]))
        out.append(("/live/clip/set/name", [track + k, slot, f"cuesmith {part.name}"]))
        for i in range(0, len(part.notes), NOTES_PER_MESSAGE):
            values: list = [track + k, slot]
            for pitch, start, beats, velocity in part.notes[i:i + NOTES_PER_MESSAGE]:
                values += [pitch, float(start), float(beats), velocity, False]
            out.append(("/live/clip/add/notes", values))
    return out


@dataclass
class Placed:
    tempo: float  # BPM of the score's first bar
    midi: Optional[str]  # the variation's MIDI; None for an audio-only family
    audio: list[str]  # the mix and stems (first variation), to drag into Live


def placed(result_path: Path, variation: int) -> Placed:
    """What result.json's placement says to put in Live (the MIDI of `variation`, 1 = the placement's own)."""
    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
        placement = result["placement"]
        midi = placement["midi"] if variation == 1 else result["variations"][variation - 1]["midi"]
        audio = placement.get("audio") or {}
        files = ([audio["mix"]] if audio.get("mix") else []) + sorted((audio.get("stems") or {}).values())
        return Placed(float(placement["tempo"]), midi, files)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise CuesmithError(f"not a cuesmith score result (schema version 2) with a variation {variation}",
                            result_path) from None


def main(argv: list[str] | None = None) -> int:
    from pythonosc.udp_client import SimpleUDPClient

    parser = argparse.ArgumentParser(prog="python -m cuesmith.plugin_bridge.hosts.ableton_osc",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, help="result.json of a score job")
    parser.add_argument("--variation", type=int, default=1)
    parser.add_argument("--track", type=int, default=0, help="first MIDI track (0-based)")
    parser.add_argument("--slot", type=int, default=0, help="clip slot (scene, 0-based)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11000, help="AbletonOSC's port (11000)")
    args = parser.parse_args(argv)
    try:
        score = placed(args.result, args.variation)
        parts = read_parts(score.midi) if score.midi else []
    except CuesmithError as error:
        print(f"cuesmith: {error}", file=sys.stderr)
        return 2
    client = SimpleUDPClient(args.host, args.port)
    for address, values in messages(score.tempo, parts, args.track, args.slot):
        client.send_message(address, values)
    for k, part in enumerate(parts):
        print(f"{part.name}: {len(part.notes)} notes -> track {args.track + k}, slot {args.slot}")
    if not score.midi:
        print("audio only (no MIDI): drag these into Live at the video's start: " + ", ".join(score.audio))
    print(f"tempo {score.tempo:g} BPM sent to AbletonOSC at {args.host}:{args.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
