"""Video analysis: one decode, then cuts, gradual transitions, motion, colour and a tempo range."""
