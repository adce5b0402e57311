"""The host's CPU features: read from /proc/cpuinfo's flags (or torch's probes where there is no such
file), named the way summaries and benchmarks print them, strongest first."""

from archfuse import host


def test_features_are_named_strongest_first_and_unknown_flags_ignored():
    flags = {"fpu", "avx2", "avx512f", "amx_tile", "amx_bf16", "avx512_bf16", "sse4_2"}
    assert host.features_from_flags(flags) == ["AMX-BF16", "AVX512-BF16", "AVX-512", "AVX2"]
    assert host.features_from_flags({"fpu", "sse4_2"}) == []


def test_cpu_features_come_from_the_flags_line(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu avx2 fma\n\n"
                       "processor\t: 1\nmodel name\t: Some CPU 9000\nflags\t\t: fpu avx2 fma\n")
    monkeypatch.setattr(host, "CPUINFO", cpuinfo)
    host.cpu_features.cache_clear(), host.cpu_name.cache_clear()
    try:
        assert host.cpu_features() == ("AVX2",) and host.cpu_name() == "Some CPU 9000"
        assert host.host_line().startswith("host: Some CPU 9000; CPU features: AVX2; torch kernels: ")
    finally:
        host.cpu_features.cache_clear(), host.cpu_name.cache_clear()


def test_without_cpuinfo_torch_probes_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(host, "CPUINFO", tmp_path / "absent")
    monkeypatch.setattr(host, "_features_from_torch", lambda: ["AVX-512", "AVX2"])
    host.cpu_features.cache_clear(), host.cpu_name.cache_clear()
    try:
        assert host.cpu_features() == ("AVX-512", "AVX2") and host.cpu_name()
    finally:
        host.cpu_features.cache_clear(), host.cpu_name.cache_clear()
