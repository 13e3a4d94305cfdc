"""CPU detection (edgepose.cpu): /proc/cpuinfo samples of each class, and the live machine.

The samples keep the lines that matter (vendor, family/model, model name, flags / Features, Arm
implementer and part) as the Linux kernel prints them; flag lists are real ones, shortened.
"""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from edgepose import cpu

XEON_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
stepping\t: 8
cpu MHz\t\t: 2000.000
flags\t\t: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 f16c avx lm avx2 bmi2 avx512f avx512dq adx avx512ifma \
avx512cd sha_ni avx512bw avx512vl avx_vnni avx512_bf16 avx512vbmi avx512_vbmi2 gfni vaes avx512_vnni avx512_bitalg \
avx512_vpopcntdq amx_bf16 avx512_fp16 amx_tile amx_int8

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 avx lm avx2 avx512f avx512_vnni amx_tile amx_int8
"""

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9654 96-Core Processor
stepping\t: 1
flags\t\t: fpu sse sse2 ssse3 fma cx16 sse4_1 sse4_2 f16c avx lm avx2 bmi2 avx512f avx512dq avx512ifma avx512cd \
avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vbmi2 gfni vaes avx512_vnni avx512_bitalg avx512_vpopcntdq
"""

ZEN2 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 49
model name\t: AMD EPYC 7742 64-Core Processor
stepping\t: 0
flags\t\t: fpu vme sse sse2 ht syscall lm ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand \
bmi1 avx2 smep bmi2 rdseed adx clflushopt clwb sha_ni xsaveopt xsavec
"""

ALDER_LAKE = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: 12th Gen Intel(R) Core(TM) i7-12700
flags\t\t: fpu sse sse2 fma f16c avx lm avx2 avx_vnni
"""

SKYLAKE_SP = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz
flags\t\t: fpu sse sse2 fma f16c avx lm avx2 avx512f avx512dq avx512cd avx512bw avx512vl
"""

NEOVERSE_N1 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

processor\t: 1
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""

NEOVERSE_V1 = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop \
sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd40
"""

RASPBERRY_PI_4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd08

Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""

RK3588 = "\n\n".join(
    f"processor\t: {i}\nFeatures\t: fp asimd fphp asimdhp asimddp\nCPU implementer\t: 0x41\n"
    f"CPU architecture: 8\nCPU part\t: {'0xd05' if i < 4 else '0xd0b'}" for i in range(8))


@pytest.mark.parametrize("text, name, vendor, cls, int8_dot", [
    (XEON_AMX, "Intel(R) Xeon(R) Platinum 8480+", "Intel", "x86-avx512-vnni", True),
    (ZEN4, "AMD EPYC 9654 96-Core Processor", "AMD", "x86-avx512-vnni", True),
    (ZEN2, "AMD EPYC 7742 64-Core Processor", "AMD", "x86-avx2", False),
    (ALDER_LAKE, "12th Gen Intel(R) Core(TM) i7-12700", "Intel", "x86-avx2-vnni", True),
    (SKYLAKE_SP, "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", "Intel", "x86-avx512", False),
    (NEOVERSE_N1, "Neoverse-N1", "ARM", "arm64-dotprod", True),
    (NEOVERSE_V1, "Neoverse-V1", "ARM", "arm64-i8mm", True),
    (RASPBERRY_PI_4, "Cortex-A72", "ARM", "arm64-neon", True),
    (RK3588, "Cortex-A55 x4 + Cortex-A76 x4", "ARM", "arm64-dotprod", True),
], ids=["xeon-amx", "zen4", "zen2", "alder-lake", "skylake-sp", "neoverse-n1", "neoverse-v1", "rpi4", "rk3588"])
def test_samples_give_name_vendor_and_class(text, name, vendor, cls, int8_dot):
    info = cpu.parse_cpuinfo(text)
    assert (info.model_name, info.vendor, info.cpu_class, info.int8_dot) == (name, vendor, cls, int8_dot)
    assert info.cpu_class in cpu.CLASSES
    assert info.model_name in info.describe() and cls in info.describe()


def test_flags_of_interest_only():
    amx = cpu.parse_cpuinfo(XEON_AMX)
    assert {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "f16c"} <= amx.flags
    assert "sse2" not in amx.flags and "sha_ni" not in amx.flags and amx.arch == "x86_64"
    assert amx.ident == "family 6 model 143 stepping 8"
    zen2 = cpu.parse_cpuinfo(ZEN2)
    assert zen2.has("avx2") and zen2.has("f16c") and not zen2.has("avx512f") and not zen2.has("avx512_vnni")
    n1 = cpu.parse_cpuinfo(NEOVERSE_N1)
    assert n1.arch == "aarch64" and {"asimddp", "fphp", "asimdhp"} <= n1.flags and "i8mm" not in n1.flags
    assert n1.ident == "implementer 0x41 part 0xd0c"


def test_to_dict_is_json_ready():
    d = cpu.parse_cpuinfo(ZEN2).to_dict()
    assert d["class"] == "x86-avx2" and d["vendor"] == "AMD" and d["flags"] == sorted(d["flags"])
    assert {"model_name", "arch", "ident", "source"} <= set(d)


def test_machine_overrides_the_guess_and_unknowns_degrade():
    assert cpu.parse_cpuinfo(ZEN2, machine="AMD64").arch == "x86_64"
    assert cpu.parse_cpuinfo("", machine="x86_64").cpu_class == "x86-unknown"
    assert cpu.parse_cpuinfo("", machine="x86_64").int8_dot is None
    assert cpu.parse_cpuinfo("", machine="arm64").cpu_class == "arm64-unknown"
    assert cpu.parse_cpuinfo("").model_name == "unknown CPU"
    assert cpu.classify("x86_64", {"avx", "fma"}) == "x86-sse"
    assert cpu.classify("armv7l", None) == "armv7l" and cpu.classify(cpu.normalise_arch("armv7l"), None) == "arm32"


def test_the_live_machine():
    info = cpu.cpu_info()
    assert info is cpu.cpu_info()  # computed once, cached
    assert cpu.cpu_class() == info.cpu_class and cpu.describe_cpu() == info.describe()
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert info.arch == "x86_64" and info.cpu_class.startswith("x86-")
        if sys.platform.startswith("linux"):
            flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
            features = cpu.cpuid_features() or {}
            # CPUID (numpy's dispatch) decides the flags it knows; on real hardware it agrees with /proc/cpuinfo
            flags = (flags - features.keys()) | {f for f, on in features.items() if on}
            assert info.has("avx2") == ("avx2" in flags)
            assert info.has("avx512_vnni") == ("avx512_vnni" in flags)
            assert info.int8_dot == bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)
            assert info.cpu_class != "x86-unknown" and "CPUID" in info.source
            for flag, on in features.items():
                assert info.has(flag) == on, flag


def test_cpuid_decides_the_flags_it_knows():
    """Under `qemu-x86_64 -cpu EPYC-Rome` on a Zen 4 host, /proc/cpuinfo is the host's but CPUID (what the
    engines dispatch on) has no AVX-512: the class follows CPUID and the source says where they differ."""
    host = cpu.parse_cpuinfo(ZEN4, source="/proc/cpuinfo")
    assert host.cpu_class == "x86-avx512-vnni"
    rome = {"avx": True, "avx2": True, "fma": True, "f16c": True, "avx512f": False, "avx512bw": False,
            "avx512vl": False, "avx512_vnni": False, "avx512_bf16": False}
    seen = cpu.with_cpuid(host, rome)
    assert seen.cpu_class == "x86-avx2" and seen.int8_dot is False
    assert "not in CPUID: avx512_bf16 avx512_vnni avx512bw avx512f avx512vl" in seen.source
    assert (seen.model_name, seen.ident) == (host.model_name, host.ident)
    # agreeing sources: same flags; flags numpy does not report (AVX-VNNI, AMX) stay as read
    assert cpu.with_cpuid(host, {f: f in host.flags for f in rome}).flags == host.flags
    amx = cpu.parse_cpuinfo(XEON_AMX)
    assert "amx_int8" in cpu.with_cpuid(amx, {f: f in amx.flags for f in rome}).flags
    # no flags read (Windows: platform only): CPUID gives them
    blind = cpu.CpuInfo("Intel64 Family 6", "Intel", "x86_64", None, "platform")
    assert blind.cpu_class == "x86-unknown" and cpu.with_cpuid(blind, rome).cpu_class == "x86-avx2"
    # off x86, or no features: unchanged
    arm = cpu.parse_cpuinfo(NEOVERSE_N1)
    assert cpu.with_cpuid(arm, rome) is arm and cpu.with_cpuid(host, None) is host


def test_nothing_is_probed_at_import():
    code = ("import edgepose.cpu as c, sys; print(c.cpu_info.cache_info().currsize); "
            "import edgepose.benchmarks.cpu; print(c.cpu_info.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0"]


def test_benchmarks_use_the_same_detection():
    from edgepose.benchmarks.cpu import cpu_peak, parse_cpuinfo

    assert cpu_peak().cpu_class == cpu.cpu_class()
    assert cpu_peak().model_name == cpu.cpu_info().model_name
    peak = parse_cpuinfo(ZEN2)
    assert (peak.cpu_class, peak.isa, peak.fp32_lanes) == ("x86-avx2", "avx2", 8)
    assert parse_cpuinfo(NEOVERSE_N1, ghz=3.0).isa == "neon"
