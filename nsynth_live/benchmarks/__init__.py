"""Speed measurements as library functions: each returns a report (a JSON-ready dict) and a table.

``nsynth-live bench ...`` (:mod:`nsynth_live.cli.bench`) and the scripts in ``bench/`` call these;
every report carries the machine it ran on (:func:`.machine.machine_info`: the CPU's name and SIMD
level) and, where a figure is compute, the same run's fp32 MatMul peak (:func:`.peak.matmul_peak_gflops`).

- :mod:`.machine`: what the numbers were measured on;
- :mod:`.report`: timing, the text table, the JSON report;
- :mod:`.peak`: the ONNX Runtime fp32 MatMul peak;
- :mod:`.engines`: voices streamed through the host's engines (random-weight exports, every config
  including the shipped one with its excitation);
- :mod:`.generation`, :mod:`.training`: the PyTorch side (these import torch).
"""
