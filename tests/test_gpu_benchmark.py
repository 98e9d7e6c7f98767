"""The GPU benchmark's whole path on the CPU: check_family with device="cpu" for every family
(real loads, samples, timings and tiny training), the comparison rules, error reporting, and
the skip without CUDA."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import gpu
from hub_models.registry import FAMILIES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Bundled snapshots, without probing a Hub these machines cannot reach."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_run_without_cuda_skips(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = gpu.run(quick=True, verbose=False)
    assert list(result) == ["skipped"] and result["skipped"].startswith("no CUDA device: ")


def test_cli_without_cuda_exits_cleanly():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "gpu", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["gpu"]["skipped"].startswith("no CUDA device")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_check_family_on_cpu(name):
    result = gpu.check_family(FAMILIES[name], "cpu", n=4, repeats=1)
    assert result["ok"], result
    assert result["model"] == FAMILIES[name].featured_model.repo_id
    assert result["load"]["source"].startswith("bundled snapshot")

    agreement = result["agreement"]
    assert agreement["ok"] and agreement["within_tolerance"] and agreement["n"] == 4
    assert agreement["default_precision"]["within_tolerance"]
    if agreement["kind"] == "float":
        assert agreement["max_abs_diff"] == 0.0  # one device, one model: bit for bit
    else:
        assert agreement["identical_share"] == 1.0 and agreement["token_agreement"] == 1.0

    latency = result["latency"]
    for size in ("one_ms", "batch_ms"):
        assert latency[size]["cpu"] > 0 and latency[size]["device"] > 0

    training = result["training"]
    assert training["ok"] and training["losses_finite"] and training["last_losses"]
    assert training["on_device"] and "CPU" in training["hardware"]
    assert training["output_loads"] and training["output_sample_finite"]
    assert training["wall_seconds"] is not None
    json.dumps(result)  # the report is JSON as it stands


def test_compare_floats():
    a = torch.linspace(-1, 1, 50).reshape(5, 10)
    close = gpu.compare(a, a + 5e-4)
    assert close["kind"] == "float" and close["within_tolerance"]
    assert close["max_abs_diff"] == pytest.approx(5e-4, rel=1e-3)
    assert not gpu.compare(a, a + 3e-3)["within_tolerance"]
    assert not gpu.compare(a, a.clone().fill_(float("nan")))["within_tolerance"]
    assert not gpu.compare(a, a[:4])["within_tolerance"]
    # relative part of the bound: large values may differ more
    big = torch.full((2, 2), 100.0)
    assert gpu.compare(big, big + 0.05)["within_tolerance"]


def test_compare_tokens_by_whole_sequences():
    tokens = torch.arange(40 * 6).reshape(40, 6) % 7
    assert gpu.compare(tokens, tokens.clone())["identical_share"] == 1.0
    diverged = tokens.clone()
    diverged[0, 3:] = (diverged[0, 3:] + 1) % 7  # one draw flipped, the rest followed
    result = gpu.compare(tokens, diverged)
    assert result["kind"] == "tokens" and result["identical_share"] == pytest.approx(39 / 40)
    assert result["within_tolerance"]  # 97.5 % >= 95 %
    diverged[:3, -1] += 1
    assert not gpu.compare(tokens, diverged)["within_tolerance"]  # 36 / 40 = 90 %


def test_a_failing_stage_is_reported_and_the_others_still_run():
    calls = []

    def sample_failing_on_the_second_model(model, n, seed):
        calls.append(model)
        if model is not calls[0]:
            raise RuntimeError("Expected all tensors to be on the same device")
        return FAMILIES["toy2d"].sample(model, n, seed)

    family = dataclasses.replace(FAMILIES["toy2d"], sample=sample_failing_on_the_second_model)
    result = gpu.check_family(family, "cpu", n=4, repeats=1, train_tiny=False)
    assert not result["ok"] and result["load"]["ok"]
    for stage in ("agreement", "latency"):
        assert not result[stage]["ok"]
        assert "same device" in result[stage]["error"]
        assert result[stage]["at"].startswith("tests/test_gpu_benchmark.py:")
    assert "training" not in result


def test_benchmark_reports_every_family_and_all_ok(monkeypatch):
    def fake_check(family, device, **kwargs):
        if family.name == "images":
            raise ValueError("broken")
        return {"ok": family.name != "seqgan", "device": device, **kwargs}

    monkeypatch.setattr(gpu, "check_family", fake_check)
    result = gpu.benchmark("cpu", quick=True, verbose=False)
    assert set(result["families"]) == set(FAMILIES)
    assert result["families"]["toy2d"] == {"ok": True, "device": "cpu", "n": 16, "repeats": 5}
    assert result["families"]["images"]["error"] == "ValueError: broken"
    assert not result["all_ok"] and result["quick"]
    assert result["torch"] == torch.__version__ and set(result["notes"]) >= {"agreement", "tokens"}

    monkeypatch.setattr(gpu, "check_family", lambda family, device, **kw: {"ok": True})
    assert gpu.benchmark("cpu", quick=True, verbose=False)["all_ok"]


def test_full_fp32_restores_the_settings():
    before = gpu.precision_settings()
    with gpu.full_fp32():
        inside = gpu.precision_settings()
        if hasattr(torch.backends.cudnn, "conv"):
            assert set(inside.values()) == {"ieee"}
        else:
            assert set(inside.values()) == {"False"}
    assert gpu.precision_settings() == before
