"""Which numeric precision training uses: ``trainer.precision: auto`` picks bf16 mixed precision
where the hardware computes bf16 natively, else fp32.

* GPU: bf16-mixed when ``torch.cuda.is_bf16_supported()``, else 16-mixed.
* CPU: bf16-mixed only when the CPU has AVX512-BF16 or AMX-BF16 instructions (read from the
  ``/proc/cpuinfo`` flags, or ``torch.backends.cpu.get_cpu_capability()`` reporting AMX). Without
  them PyTorch emulates bf16 and autocast makes training slower, not faster, so fp32 it is.
"""

from __future__ import annotations

from pathlib import Path

#: /proc/cpuinfo flags meaning native bf16 arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags (empty when the file does not exist, e.g. on macOS or Windows)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_bf16_supported(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX)."""
    if any(f in cpu_flags(cpuinfo) for f in BF16_FLAGS):
        return True
    try:
        import torch

        return "AMX" in str(torch.backends.cpu.get_cpu_capability()).upper()
    except Exception:  # pragma: no cover - very old torch
        return False


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """The Lightning precision for ``trainer.precision`` (``auto``, ``32``, or a Lightning name)."""
    if precision == "32":
        return "32-true"
    if precision != "auto":
        return precision
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_bf16_supported() else "32-true"


__all__ = ["cpu_flags", "cpu_bf16_supported", "resolve_precision", "BF16_FLAGS"]
