"""A trained model as ONNX graphs (`seqkit export`, onnx.py, needs torch) and those graphs run by
onnxruntime with the same search (runtime.py, needs no torch)."""
