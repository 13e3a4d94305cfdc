"""This machine's CPU in one place: model name, vendor, architecture, the instruction-set flags
that decide which int8 / fp16 kernels the runtimes pick, and a short class name.

    from edgepose.cpu import cpu_info, cpu_class, describe_cpu
    cpu_class()       # "x86-avx512-vnni"
    describe_cpu()    # "AMD EPYC 9654 96-Core Processor (x86-avx512-vnni; avx2 avx512f avx512_vnni f16c fma)"
    cpu_info().to_dict()

Classes (what the INT8 engines, the benchmarks and the reports key on):

    x86-avx512-vnni   AVX-512 with VNNI (Intel Xeon Cascade Lake and later, AMX parts too; AMD Zen 4+)
    x86-avx512        AVX-512 without VNNI (Intel Skylake-SP)
    x86-avx2-vnni     AVX-VNNI without AVX-512 (Intel Alder Lake and later client cores)
    x86-avx2          AVX2 only (AMD Zen 1-3, Intel Haswell-Coffee Lake)
    x86-sse           neither AVX2 nor AVX-512
    arm64-i8mm        ARMv8.6 int8 matrix multiply (implies dotprod)
    arm64-dotprod     ARMv8.2 dot product (asimddp)
    arm64-neon        neither
    x86-unknown / arm64-unknown   the flags could not be read (not Linux, no sysctl)

Why VNNI is the line that matters: without it, x86 int8 kernels multiply uint8 x int8 pairs with
`vpmaddubsw`, whose int16 pair sums saturate (2 x 255 x 127 > 32767); VNNI (`vpdpbusd`) and AMX
accumulate in int32. MNN's x86 int8 path is also slower than its float path without VNNI.

Nothing is probed at import. The first call reads /proc/cpuinfo (Linux), or `sysctl` (macOS), or
the `platform` module (elsewhere), and caches the answer. On x86 the SIMD flags are then taken from
CPUID as numpy's runtime dispatch reads it (with the OS's XSAVE check), since that is what the
engines' own dispatch sees: where the two disagree (an emulator such as `qemu-x86_64 -cpu EPYC-Rome`
shows the host's /proc/cpuinfo; a hypervisor or OS that masks AVX-512) CPUID wins and `source` says so,
and where no flags could be read (Windows) CPUID gives them.
"""
from __future__ import annotations

import functools
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Flags worth knowing, in Linux /proc/cpuinfo spelling.
X86_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
ARM_FLAGS = ("asimd", "asimddp", "fphp", "asimdhp", "i8mm", "bf16", "sve", "sve2")

CLASSES = ("x86-avx512-vnni", "x86-avx512", "x86-avx2-vnni", "x86-avx2", "x86-sse", "x86-unknown",
           "arm64-i8mm", "arm64-dotprod", "arm64-neon", "arm64-unknown", "arm32")
VNNI_CLASSES = ("x86-avx512-vnni", "x86-avx2-vnni")

# /proc/cpuinfo "CPU implementer" and (for Arm Ltd) "CPU part" codes -> names (aarch64 has no model name).
_ARM_IMPLEMENTERS = {0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu", 0x48: "HiSilicon",
                     0x4E: "NVIDIA", 0x51: "Qualcomm", 0x61: "Apple", 0x6D: "Microsoft", 0xC0: "Ampere"}
_ARM_PARTS = {0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57",
              0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76",
              0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD40: "Neoverse-V1", 0xD41: "Cortex-A78",
              0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710", 0xD48: "Cortex-X2",
              0xD49: "Neoverse-N2", 0xD4B: "Cortex-A78C", 0xD4D: "Cortex-A715", 0xD4E: "Cortex-X3",
              0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520", 0xD81: "Cortex-A720", 0xD82: "Cortex-X4",
              0xD84: "Neoverse-V3", 0xD8E: "Neoverse-N3"}
# macOS sysctl hw.optional keys -> Linux flag names.
_SYSCTL_FLAGS = {"hw.optional.avx1_0": "avx", "hw.optional.avx2_0": "avx2", "hw.optional.fma": "fma",
                 "hw.optional.f16c": "f16c", "hw.optional.avx512f": "avx512f", "hw.optional.avx512bw": "avx512bw",
                 "hw.optional.avx512vl": "avx512vl", "hw.optional.avx512vnni": "avx512_vnni",
                 "hw.optional.neon": "asimd", "hw.optional.arm.FEAT_DotProd": "asimddp",
                 "hw.optional.arm.FEAT_FP16": "asimdhp", "hw.optional.arm.FEAT_I8MM": "i8mm",
                 "hw.optional.arm.FEAT_BF16": "bf16"}


@dataclass(frozen=True)
class CpuInfo:
    """What the runtimes' kernel choice depends on. `flags` holds the flags of interest that are
    present (X86_FLAGS / ARM_FLAGS), or None when they could not be read."""

    model_name: str
    vendor: str
    arch: str                          # "x86_64" | "x86" | "aarch64" | "arm" | platform.machine()
    flags: frozenset[str] | None
    source: str                        # where it was read: /proc/cpuinfo, sysctl, platform, or "text"
    ident: str = ""                    # x86 "family 25 model 17 stepping 1"; Arm "implementer 0x41 part 0xd0c"

    @property
    def cpu_class(self) -> str:
        return classify(self.arch, self.flags)

    @property
    def int8_dot(self) -> bool | None:
        """Whether int8 dot products accumulate without int16 saturation (x86: VNNI or AMX;
        Arm: always, its kernels widen or use (S/U)DOT). None = unknown."""
        if self.arch in ("aarch64", "arm"):
            return True
        if self.flags is None:
            return None
        return bool(self.flags & {"avx512_vnni", "avx_vnni", "amx_int8"})

    def has(self, flag: str) -> bool | None:
        return None if self.flags is None else flag in self.flags

    def describe(self) -> str:
        """One line for reports: model name, class, flags of interest."""
        flags = " ".join(sorted(self.flags)) if self.flags is not None else "flags unknown"
        ident = f" [{self.ident}]" if self.ident else ""
        return f"{self.model_name}{ident} ({self.cpu_class}; {flags})"

    def to_dict(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "vendor": self.vendor, "arch": self.arch, "class": self.cpu_class,
                "flags": sorted(self.flags) if self.flags is not None else None, "ident": self.ident,
                "source": self.source}


def classify(arch: str, flags: frozenset[str] | set[str] | None) -> str:
    """The class name of an architecture + flag set (see the module doc)."""
    if arch in ("x86_64", "x86"):
        if flags is None:
            return "x86-unknown"
        if "avx512f" in flags:
            return "x86-avx512-vnni" if "avx512_vnni" in flags else "x86-avx512"
        if "avx2" in flags:
            return "x86-avx2-vnni" if "avx_vnni" in flags else "x86-avx2"
        return "x86-sse"
    if arch == "aarch64":
        if flags is None:
            return "arm64-unknown"
        if "i8mm" in flags:
            return "arm64-i8mm"
        return "arm64-dotprod" if "asimddp" in flags else "arm64-neon"
    if arch == "arm":
        return "arm32"
    return arch or "unknown"


def normalise_arch(machine: str) -> str:
    m = (machine or "").lower()
    if m in ("x86_64", "amd64", "x64", "em64t"):
        return "x86_64"
    if m in ("i386", "i486", "i586", "i686", "x86"):
        return "x86"
    if m in ("aarch64", "arm64", "armv8", "armv8l", "arm64e"):
        return "aarch64"
    if m.startswith("arm"):
        return "arm"
    return m


def _field(block: str, name: str) -> str | None:
    m = re.search(rf"^{re.escape(name)}\s*:\s*(.*)$", block, re.MULTILINE)
    return m.group(1).strip() if m else None


def _int(value: str | None) -> int | None:
    try:
        return int(value, 0) if value else None
    except ValueError:
        return None


def parse_cpuinfo(text: str, *, machine: str | None = None, source: str = "text") -> CpuInfo:
    """A CpuInfo from the text of /proc/cpuinfo. `machine` (platform.machine()) decides the
    architecture; without it the text does (x86 blocks have `flags`, Arm ones `Features`)."""
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()] or [""]
    first = blocks[0]
    if machine:
        arch = normalise_arch(machine)
    elif _field(first, "flags") is not None or _field(first, "vendor_id") is not None:
        arch = "x86_64" if " lm " in f" {_field(first, 'flags') or ''} " or not _field(first, "flags") else "x86"
    elif _field(first, "Features") is not None or _field(first, "CPU implementer") is not None:
        arch = "arm" if (_field(first, "CPU architecture") or "8").startswith("7") else "aarch64"
    else:
        arch = "unknown"
    if arch in ("x86_64", "x86"):
        raw = _field(first, "flags")
        flags = frozenset(f for f in raw.split() if f in X86_FLAGS) if raw is not None else None
        vendor = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}.get(
            _field(first, "vendor_id") or "", _field(first, "vendor_id") or "unknown")
        name = _field(first, "model name") or "unknown x86 CPU"
        ident = " ".join(f"{key.split()[-1]} {_field(first, key)}" for key in ("cpu family", "model", "stepping")
                         if _field(first, key) is not None)
    else:
        raw = _field(first, "Features")
        flags = frozenset(f for f in raw.split() if f in ARM_FLAGS) if raw is not None else None
        implementer = _int(_field(first, "CPU implementer"))
        vendor = _ARM_IMPLEMENTERS.get(implementer, f"implementer {implementer:#x}" if implementer is not None
                                       else "unknown")
        name = _field(first, "model name") or _arm_name(blocks, vendor) or _field(text, "Hardware") or \
            ("unknown CPU" if arch == "unknown" else f"unknown {arch} CPU")
        ident = " ".join(f"{key.split()[-1]} {_field(first, key)}" for key in ("CPU implementer", "CPU part")
                         if _field(first, key) is not None)
    return CpuInfo(model_name=re.sub(r"\s+", " ", name), vendor=vendor, arch=arch, flags=flags, source=source,
                   ident=ident)


def _arm_name(blocks: list[str], vendor: str) -> str | None:
    """'Neoverse-N1', or 'Cortex-A55 x4 + Cortex-A76 x4' for big.LITTLE parts."""
    counts: dict[str, int] = {}
    for block in blocks:
        part = _int(_field(block, "CPU part"))
        if part is None:
            continue
        implementer = _int(_field(block, "CPU implementer"))
        label = _ARM_PARTS.get(part) if implementer == 0x41 else None
        label = label or f"{vendor} part {part:#x}"
        counts[label] = counts.get(label, 0) + 1
    if not counts:
        return None
    if len(counts) == 1:
        return next(iter(counts))
    return " + ".join(f"{label} x{n}" for label, n in counts.items())


def _from_sysctl(machine: str) -> CpuInfo | None:
    try:
        out = subprocess.run(["sysctl", "machdep.cpu.brand_string", "hw.optional"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    values = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    values = {k.strip(): v.strip() for k, v in values.items()}
    name = values.get("machdep.cpu.brand_string")
    if not name:
        return None
    flags = frozenset(flag for key, flag in _SYSCTL_FLAGS.items() if values.get(key) == "1")
    vendor = "Apple" if "Apple" in name else "Intel" if "Intel" in name else "unknown"
    return CpuInfo(model_name=name, vendor=vendor, arch=normalise_arch(machine), flags=flags, source="sysctl")


def _from_platform(machine: str) -> CpuInfo:
    name = platform.processor() or machine or "unknown CPU"
    vendor = "Intel" if "Intel" in name else "AMD" if ("AMD" in name or "AuthenticAMD" in name) else "unknown"
    return CpuInfo(model_name=name, vendor=vendor, arch=normalise_arch(machine), flags=None, source="platform")


# numpy's runtime CPU-feature names (numpy._core._multiarray_umath.__cpu_features__) -> Linux flag names.
_NUMPY_X86_FLAGS = {"AVX": "avx", "AVX2": "avx2", "FMA3": "fma", "F16C": "f16c", "AVX512F": "avx512f",
                    "AVX512BW": "avx512bw", "AVX512VL": "avx512vl", "AVX512VNNI": "avx512_vnni",
                    "AVX512BF16": "avx512_bf16", "AVX512FP16": "avx512_fp16"}


def cpuid_features() -> dict[str, bool] | None:
    """{flag: present} for the x86 flags numpy's dispatch detects from CPUID (and the OS's XSAVE state),
    in Linux spelling; None where numpy does not say (another architecture, an old numpy)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return None
    found = {flag: bool(features[key]) for key, flag in _NUMPY_X86_FLAGS.items() if key in features}
    return found or None


def with_cpuid(info: CpuInfo, features: dict[str, bool] | None) -> CpuInfo:
    """`info` with its x86 flags that CPUID reports (`cpuid_features()`) taken from CPUID; the others
    (AVX-VNNI, AMX, which numpy does not report) stay as read. Unchanged off x86 or without features."""
    if info.arch not in ("x86_64", "x86") or not features:
        return info
    read = info.flags
    flags = frozenset((read or frozenset()) - features.keys()) | {f for f, on in features.items() if on}
    if read is None:
        source = f"{info.source} + CPUID (numpy)"
    else:
        lost, gained = sorted(read - flags), sorted(flags - read)
        diff = "; ".join(part for part in (f"not in CPUID: {' '.join(lost)}" if lost else "",
                                           f"only in CPUID: {' '.join(gained)}" if gained else "") if part)
        source = f"{info.source} + CPUID (numpy{'; ' + diff if diff else ''})"
    return CpuInfo(model_name=info.model_name, vendor=info.vendor, arch=info.arch, flags=flags, source=source,
                   ident=info.ident)


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU (computed on the first call, then cached)."""
    return with_cpuid(_read_cpu(), cpuid_features())


def _read_cpu() -> CpuInfo:
    machine = platform.machine()
    if sys.platform.startswith("linux"):
        try:
            return parse_cpuinfo(Path("/proc/cpuinfo").read_text(errors="replace"), machine=machine,
                                 source="/proc/cpuinfo")
        except OSError:
            pass
    if sys.platform == "darwin":
        info = _from_sysctl(machine)
        if info is not None:
            return info
    return _from_platform(machine)


def cpu_class() -> str:
    """This machine's class, e.g. "x86-avx2" (see the module doc)."""
    return cpu_info().cpu_class


def describe_cpu() -> str:
    """This machine's CPU in one line for reports: model name (class; flags)."""
    return cpu_info().describe()
