"""The host's CPU: its name and the instruction-set features that decide how fast it trains in bf16
(AMX, AVX512-BF16) and runs int8 (AMX-INT8, VNNI), read from /proc/cpuinfo where there is one and
from torch's own probes elsewhere. summary.json records them beside the precision, and every
benchmark prints them, because a figure measured on one CPU may not hold on another."""

import platform
from functools import lru_cache
from pathlib import Path

# /proc/cpuinfo flag -> the name docs and summaries use, strongest first.
FLAGS = (("amx_bf16", "AMX-BF16"), ("amx_int8", "AMX-INT8"), ("avx512_bf16", "AVX512-BF16"),
         ("avx512_vnni", "AVX512-VNNI"), ("avx512f", "AVX-512"), ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2"))
CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(text: str, names: tuple[str, ...]) -> str | None:
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in names:
            return value.strip()
    return None


def _read_cpuinfo() -> str:
    try:
        return CPUINFO.read_text()
    except OSError:
        return ""


def features_from_flags(flags: set[str]) -> list[str]:
    """The features of FLAGS among ``flags`` (a /proc/cpuinfo flags line, split), strongest first."""
    return [name for flag, name in FLAGS if flag in flags]


def _features_from_torch() -> list[str]:
    """Where /proc/cpuinfo is absent (macOS, Windows): what torch's probes report."""
    import torch

    out = []
    probes = (("_is_amx_tile_supported", "AMX-BF16"), ("_is_avx512_bf16_supported", "AVX512-BF16"),
              ("_is_avx512_vnni_supported", "AVX512-VNNI"), ("_is_avx512_supported", "AVX-512"),
              ("_is_avx2_supported", "AVX2"))
    for probe, name in probes:
        try:
            if getattr(torch.cpu, probe)():
                out.append(name)
        except AttributeError:  # a torch without this probe
            pass
    return out


@lru_cache(maxsize=1)
def cpu_features() -> tuple[str, ...]:
    """The CPU's features among FLAGS (AMX-BF16, AMX-INT8, AVX512-BF16, AVX512-VNNI, AVX-512, AVX-VNNI,
    AVX2), strongest first; empty on a CPU with none of them (an ARM CPU)."""
    flags = _cpuinfo_field(_read_cpuinfo(), ("flags", "Features"))
    if flags is not None:
        return tuple(features_from_flags(set(flags.split())))
    return tuple(_features_from_torch())


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform says, else "unknown"."""
    return _cpuinfo_field(_read_cpuinfo(), ("model name",)) or platform.processor() or "unknown"


def torch_capability() -> str:
    """The instruction set torch's CPU kernels were dispatched to (DEFAULT, AVX2, AVX512, ...)."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:
        return "unknown"


def host_line() -> str:
    """One line for a benchmark's header: the CPU, its features and torch's kernels."""
    features = " ".join(cpu_features()) or "none of AMX/AVX-512/AVX2"
    return f"host: {cpu_name()}; CPU features: {features}; torch kernels: {torch_capability()}"
