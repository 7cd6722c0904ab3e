"""ONNX Runtime sessions for the exported graphs: providers, options, the per-frame front end.

Both engines run the per-frame graphs (encoder, conditioner) through :class:`OrtFrontEnd`; the
``ort`` engine also runs its decoder step through :func:`make_session`.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from nsynth_live.errors import UserError
from nsynth_live.host.engines.inputs import check_audio, check_embedding
from nsynth_live.host.model_files import ExportInfo

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
QUIET = 3  # ONNX Runtime log severity: errors only

_cuda_state: tuple[bool, str] | None = None


def _probe_model() -> bytes:
    """A one-node graph, to learn whether a CUDA session really starts."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def cuda_status(refresh: bool = False) -> tuple[bool, str]:
    """Whether a CUDA session starts here, and if not why (one line), probed once and quietly.

    ``get_available_providers()`` lists CUDA for every onnxruntime-gpu wheel, GPU or not, and a
    failed CUDA load logs an error through the default logger and falls back to the CPU: the
    probe raises that logger's threshold while it runs, and for the reason loads the CUDA
    provider's library itself (its loader error names the missing CUDA library). ``refresh``
    probes again (after loading CUDA libraries, e.g. ``onnxruntime.preload_dlls``).
    """
    global _cuda_state
    if _cuda_state is None or refresh:
        import onnxruntime as ort

        version = f"onnxruntime {ort.__version__}"
        if CUDA not in ort.get_available_providers():
            _cuda_state = (False, f"{version} has no CUDA provider (the CPU-only wheel; "
                                  f"providers: {', '.join(ort.get_available_providers())})")
            return _cuda_state
        ort.set_default_logger_severity(4)
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 4
            session = ort.InferenceSession(_probe_model(), options, providers=[CUDA, CPU])
            usable = session.get_providers()[0] == CUDA
        except Exception:  # any failure to start means the same: not usable (the reason below)
            usable = False
        finally:
            ort.set_default_logger_severity(2)
        _cuda_state = (True, f"{version}, CUDA provider") if usable else (False, f"{version}: {_cuda_load_error()}")
    return _cuda_state


def _cuda_load_error() -> str:
    """Why the CUDA provider does not start: its library's loader error, or no GPU."""
    import ctypes

    import onnxruntime as ort

    lib = os.path.join(os.path.dirname(ort.__file__), "capi", "libonnxruntime_providers_cuda.so")
    if not os.path.exists(lib):
        return "the CUDA provider is listed but its library is not installed"
    try:
        ctypes.CDLL(lib)
    except OSError as err:
        return f"the CUDA provider does not load ({err})"
    return "the CUDA provider loads but no session starts on it (no CUDA GPU visible?)"


def cuda_usable() -> bool:
    """Whether a CUDA session starts here (see :func:`cuda_status`)."""
    return cuda_status()[0]


def providers_for(device: str, cuda_fallback: bool = False) -> list[str]:
    """Execution providers for ``auto`` / ``cpu`` / ``cuda``.

    Args:
        device: ``auto`` (CUDA when usable, else the CPU, silently), ``cpu`` or ``cuda``.
        cuda_fallback: for ``cuda`` where CUDA is not usable: warn and use the CPU instead of
            raising.

    Raises:
        UserError: an unknown device, or ``cuda`` without a usable CUDA provider (and no
            fallback), naming the reason.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"unknown device {device!r}; expected auto, cpu or cuda")
    if device == "cpu":
        return [CPU]
    usable, why = cuda_status()
    if usable:
        return [CUDA, CPU]
    if device == "cuda":
        if not cuda_fallback:
            raise UserError(f"device cuda: no usable CUDA for ONNX Runtime here: {why}")
        warnings.warn(f"device cuda: no usable CUDA for ONNX Runtime here ({why}); running on the CPU",
                      RuntimeWarning, stacklevel=2)
    return [CPU]


def make_session(path: Any, providers: list[str], threads: int | None = None) -> Any:
    """An InferenceSession with all graph optimisations, quiet logs and ``threads`` intra-op threads.

    Args:
        path: ONNX file (or serialized bytes).
        providers: execution providers, in order of preference.
        threads: intra-op threads (None or 0: ONNX Runtime's default, one per physical core).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or 0)
    options.inter_op_num_threads = 1
    options.log_severity_level = QUIET
    try:
        return ort.InferenceSession(str(path) if not isinstance(path, bytes) else path, options, providers=providers)
    except Exception as err:
        raise UserError(f"{path}: ONNX Runtime cannot load it ({str(err).splitlines()[0][:200]})") from None


class OrtFrontEnd:
    """The per-frame graphs (encoder, conditioner, learned source), sessions opened on first use.

    Args:
        info: the validated export.
        threads: intra-op threads.
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    def __init__(self, info: ExportInfo, threads: int | None = None, device: str = "auto"):
        self.info = info
        self.threads = threads
        self.providers = providers_for(device)
        self._sessions: dict[str, Any] = {}

    def _session(self, role: str) -> Any:
        if role not in self._sessions:
            self._sessions[role] = make_session(self.info.paths[role], self.providers, self.threads)
        return self._sessions[role]

    def close(self) -> None:
        """Drop the sessions (they reopen on the next call)."""
        self._sessions.clear()

    def condition(self, embedding: np.ndarray, pitch: Any = None) -> np.ndarray:
        """[B, bottleneck, F] (+ pitch [B]) -> float32 [B, F, L*2R+S]; see Engine.condition."""
        emb, p = check_embedding(self.info.config, embedding, pitch)
        feeds = {"embedding": emb} if p is None else {"embedding": emb, "pitch": p}
        return self._session("conditioner").run(["cond"], feeds)[0]

    def amplitudes(self, embedding: np.ndarray, pitch: Any) -> np.ndarray:
        """[B, bottleneck, F] + pitch [B] -> float32 [B, F, K]; see Engine.source_amplitudes."""
        if self.info.source is None:
            raise ValueError(f"{self.info.root}: this model has no learned source (no source.onnx)")
        emb, p = check_embedding(self.info.config, embedding, pitch)
        return self._session("source").run(["amplitudes"], {"embedding": emb, "pitch": p})[0]

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """[B, T] raw audio -> float32 [B, bottleneck, T // hop]; see Engine.encode."""
        return self._session("encoder").run(["embedding"], {"audio": check_audio(self.info.config, audio)})[0]
