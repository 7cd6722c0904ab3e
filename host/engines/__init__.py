"""The engines: one exported model streaming many voices through its decoder step.

- :mod:`.interface`: the :class:`Engine` interface both engines implement;
- :mod:`.ring_state`: the per-voice rings in numpy (the layout of the PyTorch reference);
- :mod:`.inputs`: validation of the per-frame graphs' inputs;
- :mod:`.onnx_sessions`: ONNX Runtime sessions and the per-frame front end (encoder, conditioner);
- :mod:`.ort_engine`: the ``ort`` engine (the decoder step through ONNX Runtime);
- :mod:`.fused_engine`, :mod:`.fused_kernels`, :mod:`.fused_native`, :mod:`.fused_adapter`: the
  ``fused`` engine (a compiled CPU step: the C kernel of fused_native.c, or numba's) and its
  adapter to the interface;
- :mod:`.offline`: offline rendering through an engine (:func:`render_frames`);
- :mod:`.factory`: :func:`open_engine`, which picks and opens an engine.

The names below are the package's public surface; importing the package loads neither ONNX
Runtime nor numba (the factory imports the engine it opens).
"""

from nsynth_live.host.engines.factory import ENGINE_KINDS, open_engine
from nsynth_live.host.engines.interface import Engine
from nsynth_live.host.engines.offline import (note_audio, render_frames, source_excitation,
                                           source_level, voice_excitation)

__all__ = ["ENGINE_KINDS", "Engine", "note_audio", "open_engine", "render_frames", "source_excitation",
           "source_level", "voice_excitation"]
