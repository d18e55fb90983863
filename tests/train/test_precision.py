"""bf16 only where the CPU computes it natively (flags read from /proc/cpuinfo)."""

from __future__ import annotations

from terraseg.train import precision as P


def _cpuinfo(tmp_path, flags: str):
    p = tmp_path / "cpuinfo"
    p.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n")
    return p


def test_bf16_needs_avx512_bf16_or_amx(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.backends.cpu.get_cpu_capability", lambda: "AVX512")
    assert P.cpu_flags(_cpuinfo(tmp_path, "avx512f avx512_bf16")) >= {"avx2", "avx512_bf16"}
    assert P.cpu_bf16_supported(_cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert P.cpu_bf16_supported(_cpuinfo(tmp_path, "amx_tile amx_bf16"))
    assert not P.cpu_bf16_supported(_cpuinfo(tmp_path, "avx512f avx512_vnni"))
    assert not P.cpu_bf16_supported(tmp_path / "missing")  # no /proc (macOS, Windows)
    monkeypatch.setattr("torch.backends.cpu.get_cpu_capability", lambda: "AMX")
    assert P.cpu_bf16_supported(tmp_path / "missing")


def test_auto_precision_on_cpu_follows_the_flags(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(P, "cpu_bf16_supported", lambda: True)
    assert P.resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr(P, "cpu_bf16_supported", lambda: False)
    assert P.resolve_precision("auto", "auto") == "32-true"
    assert P.resolve_precision("32", "cpu") == "32-true"
    assert P.resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"  # asked for explicitly


def test_this_machine_matches_its_cpuinfo():
    import pathlib

    text = pathlib.Path("/proc/cpuinfo").read_text() if pathlib.Path("/proc/cpuinfo").exists() else ""
    native = any(f in text.split() for f in ("avx512_bf16", "amx_bf16"))
    import torch

    native = native or "AMX" in str(torch.backends.cpu.get_cpu_capability())
    assert P.cpu_bf16_supported() == native
