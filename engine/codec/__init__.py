"""The audio codec at run time: ONNX encoder/decoder graphs and a numpy vocoder (no torch)."""
