"""nsynth-live: the NSynth WaveNet autoencoder as a playable instrument.

This package holds the model, data pipeline, training and the CLI. Importing it does not
import torch: the realtime host (``host/``) uses its torch-free helpers (mu-law, configs).
"""

__version__ = "0.1.0"

SAMPLE_RATE = 16000
"""Audio rate of every model, dataset and render, in Hz (as NSynth)."""
