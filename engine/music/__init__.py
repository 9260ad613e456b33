"""Music: representation, tokens, chords and key, MIDI files, stems, metrics."""
