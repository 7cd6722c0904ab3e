"""PyTorch -> ONNX export (:mod:`exporters.export`), its graphs and its metadata contract."""
