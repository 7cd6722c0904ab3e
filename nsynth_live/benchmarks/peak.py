"""The machine's fp32 matrix-product peak, measured through ONNX Runtime (the yardstick every
compute figure is quoted against, measured in the same run)."""

from __future__ import annotations

from nsynth_live.benchmarks.report import median_seconds


def matmul_peak_gflops(threads: int, n: int = 4096, repeats: int = 3) -> float:
    """Best fp32 GFLOP/s of one n x n MatMul through ONNX Runtime on the CPU.

    Args:
        threads: intra-op threads.
        n: side of the square matrices.
        repeats: timed runs; the fastest counts (slower ones measure the neighbours).
    """
    import numpy as np
    from onnx import TensorProto, helper

    from nsynth_live.host.engines.onnx_sessions import CPU, make_session

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul_peak",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = make_session(model.SerializeToString(), [CPU], threads)
    rng = np.random.default_rng(0)
    feeds = {x: rng.standard_normal((n, n), dtype=np.float32) for x in "ab"}
    session.run(None, feeds)
    best = min(median_seconds(lambda: session.run(None, feeds), 1) for _ in range(repeats))
    return 2 * n**3 / best / 1e9
