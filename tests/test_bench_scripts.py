"""The bench/ scripts run the shipped config (its excitation included) and report each figure beside
the same run's MatMul peak and the CPU's name and SIMD level. Tiny durations: these check that the
benchmarks run and report, not the speed (the benchmarks themselves measure that)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_script(name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / name), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def check_machine_beside(report: dict, rows: list[dict], stdout: str) -> None:
    machine = report["machine"]
    assert machine["cpu"] and machine["simd"]
    for row in rows:
        assert row["matmul_peak_gflops"] > 0
        assert row["fraction_of_peak"] == pytest.approx(row["gflops"] / row["matmul_peak_gflops"])
        assert (row["cpu"], row["simd"]) == (machine["cpu"], machine["simd"])
    assert machine["cpu"] in stdout and machine["simd"] in stdout and "peak" in stdout


def test_bench_fused_runs_the_shipped_config_with_its_excitation(tmp_path):
    out = tmp_path / "fused.json"
    res = run_script("bench_fused.py", "--batches", "1,2", "--threads", "1", "--seconds", "0.02", "--repeats", "1",
                     "--peak-size", "128", "--json", str(out))
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert report["configs"] == ["live", "live-hn-res"]  # the default: live and the shipped default's config
    rows = {(r["config"], r["batch"]): r for r in report["rows"]}
    assert set(rows) == {(c, b) for c in ("live", "live-hn-res") for b in (1, 2)}
    assert rows[("live-hn-res", 2)]["excitation"] and not rows[("live", 2)]["excitation"]
    assert all(r["samples_per_s"] > 0 and r["block_ms_max"] >= r["block_ms_median"] > 0 for r in rows.values())
    check_machine_beside(report, report["rows"], res.stdout)


@pytest.mark.jack
@pytest.mark.slow
def test_bench_host_holds_voices_of_the_shipped_model(jack_server, tmp_path):
    out = tmp_path / "host.json"
    res = run_script("bench_host.py", "--trials", "4", "--hold", "0.5", "--max-voices", "1", "--models", "shipped",
                     "--peak-size", "128", "--json", str(out))
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert 1 <= report["latency_ms"]["trials"] <= 4
    shipped = report["voices"]["shipped"]
    assert shipped["config"] == "live-hn-res" and shipped["excitation"]
    assert [r["voices"] for r in shipped["rows"]] == [1]
    assert report["matmul_peak_gflops"] > 0
    check_machine_beside(report, shipped["rows"], res.stdout)


@pytest.mark.skipif(__import__("platform").machine() not in ("x86_64", "AMD64"), reason="OpenBLAS's Haswell kernels are x86")
def test_blas_peak_holds_openblas_to_the_kernel_family_asked_and_refuses_one_it_lacks(tmp_path):
    out = tmp_path / "blas.json"
    res = run_script("blas_peak.py", "--families", "Haswell", "--size", "256", "--threads", "1", "--json", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["loaded"] for r in rows[:1]] == ["Haswell"] and all(r["gflops"] > 0 for r in rows)
    assert len(rows) == 2 and "ONNX Runtime" in rows[1]["gemm"]  # the peak bench engines quotes, beside it
    bad = run_script("blas_peak.py", "--families", "NoSuchCore", "--size", "64", "--json", str(tmp_path / "bad.json"))
    assert bad.returncode != 0 and "OPENBLAS_CORETYPE=NoSuchCore" in bad.stderr
    assert not (tmp_path / "bad.json").exists()
