"""``open_engine``: an exported model behind the engine the machine runs best."""

from __future__ import annotations

from pathlib import Path

from nsynth_live.configs import flops_per_sample
from nsynth_live.errors import UserError
from nsynth_live.host.engines.interface import Engine
from nsynth_live.host.model_files import ExportInfo, load_export

ENGINE_KINDS = ("auto", "ort", "fused")

FUSED_MAX_FLOPS = 2_000_000
"""``auto`` picks the fused engine on a CPU for models up to this many FLOPs per sample (live is
~0.33 M); beyond, batched matrix products through ONNX Runtime win (docs/benchmarks.md)."""


def open_engine(
    export_dir: str | Path | ExportInfo,
    kind: str = "auto",
    max_voices: int = 16,
    threads: int | None = None,
    device: str = "auto",
) -> Engine:
    """Open an exported model with the chosen engine.

    Args:
        export_dir: an export directory (validated here) or an :class:`ExportInfo`.
        kind: ``ort``, ``fused``, or ``auto``: ``ort`` when a GPU is usable, else ``fused`` for
            models up to :data:`FUSED_MAX_FLOPS` per sample (when numba is available), else ``ort``.
        max_voices: voice slots.
        threads: CPU threads (ONNX Runtime intra-op threads / fused workers); None: the engine's
            default (all cores for ort, 2 for fused).
        device: for ``ort``: ``auto`` (CUDA when usable), ``cpu`` or ``cuda``.

    Raises:
        UserError: unknown kind, a bad export, or an engine that cannot run here.
    """
    if kind not in ENGINE_KINDS:
        raise UserError(f"unknown engine {kind!r}; expected one of {', '.join(ENGINE_KINDS)}")
    info = export_dir if isinstance(export_dir, ExportInfo) else load_export(export_dir)
    if kind == "auto":
        from nsynth_live.host.engines.onnx_sessions import cuda_usable

        kind = "ort"
        if device != "cuda" and not (device == "auto" and cuda_usable()) and flops_per_sample(info.config) <= FUSED_MAX_FLOPS:
            try:
                import nsynth_live.host.engines.fused_engine  # noqa: F401
                kind = "fused"
            except ImportError:
                pass
    if kind == "ort":
        from nsynth_live.host.engines.ort_engine import OrtEngine

        return OrtEngine(info, max_voices=max_voices, threads=threads, device=device)
    from nsynth_live.host.engines.fused_adapter import FusedAdapter

    return FusedAdapter(info, max_voices=max_voices, threads=threads)
