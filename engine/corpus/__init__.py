"""Training data for the audio models: POP909 rendered to audio, and video paired with it by construction."""
