"""This CPU's single-core fp32 peak, from /proc/cpuinfo, to say how far a model runs from it.

The CPU itself (model name, flags, class such as "x86-avx2") comes from `edgepose.cpu`, the one
place that reads it; this module adds the clock and the peak arithmetic.

peak GFLOP/s = FMA units x fp32 lanes per vector x 2 flops per FMA x clock (GHz).

Assumptions, stated because /proc/cpuinfo cannot tell them:
  - lanes follow the widest vector ISA in the flags: avx512f -> 16, avx2/avx (+fma) -> 8, else sse 4;
    Arm: NEON 4 (SVE width is not in /proc/cpuinfo);
  - FMA units: 2 per core for AVX-512 and AVX2 parts (server Xeons since Skylake-SP Gold/Platinum,
    client cores since Haswell); some parts (e.g. Xeon Silver/Bronze, Ice Lake client) have 1 for
    512-bit vectors: override with fma_units=1 when that applies; without FMA, 1 add + 1 mul;
  - clock: cpufreq's cpuinfo_max_freq when the kernel exposes it, else "cpu MHz" (under a hypervisor
    often the nominal clock; turbo may be higher, so the peak may be understated).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgepose.cpu import CpuInfo, cpu_info
from edgepose.cpu import parse_cpuinfo as parse_cpu


@dataclass(frozen=True)
class CpuPeak:
    model_name: str
    isa: str                 # "avx512" | "avx2" | "avx" | "sse" | "neon"
    fp32_lanes: int
    fma_units: int
    flops_per_fma: int
    ghz: float
    clock_source: str
    assumptions: tuple[str, ...] = field(default=())
    cpu_class: str = ""      # edgepose.cpu class, e.g. "x86-avx512-vnni" / "x86-avx2"
    cpu: dict = field(default_factory=dict)  # edgepose.cpu.CpuInfo.to_dict(): vendor, flags, ident

    @property
    def peak_gflops(self) -> float:
        return self.fma_units * self.fp32_lanes * self.flops_per_fma * self.ghz

    def formula(self) -> str:
        return (f"{self.fma_units} FMA units x {self.fp32_lanes} fp32 lanes ({self.isa}) x "
                f"{self.flops_per_fma} flops x {self.ghz:.2f} GHz = {self.peak_gflops:.1f} GFLOP/s")

    def to_dict(self) -> dict:
        return {**asdict(self), "peak_gflops": self.peak_gflops, "formula": self.formula()}


def _first(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1).strip() if m else None


def parse_cpuinfo(text: str, *, max_freq_khz: int | None = None, fma_units: int | None = None,
                  ghz: float | None = None, info: CpuInfo | None = None) -> CpuPeak:
    """Peak figures from the text of /proc/cpuinfo (first processor), with optional overrides.
    `info` (edgepose.cpu) gives name and flags; by default it is parsed from `text`."""
    info = info or parse_cpu(text)
    flags = set(info.flags or ())
    name = info.model_name
    assumptions = []
    if info.arch in ("aarch64", "arm"):
        isa, lanes = "neon", 4
    elif "avx512f" in flags:
        isa, lanes = "avx512", 16
    elif "avx2" in flags:
        isa, lanes = "avx2", 8
    elif "avx" in flags:
        isa, lanes = "avx", 8
    else:
        isa, lanes = "sse", 4
    has_fma = "fma" in flags or isa in ("avx512", "neon")
    if fma_units is None:
        fma_units = 2
        assumptions.append(f"{fma_units} vector FMA units per core (typical for {isa} server/desktop cores; "
                           "override if the part has 1)" if has_fma else
                           "no FMA: counted as 1 add + 1 multiply unit per cycle")
    else:
        assumptions.append(f"{fma_units} FMA units (given)")
    if ghz is not None:
        source = "given"
    elif max_freq_khz:
        ghz, source = max_freq_khz / 1e6, "cpufreq cpuinfo_max_freq"
    else:
        mhz = _first(r"^cpu MHz\s*:\s*([0-9.]+)", text)
        at = _first(r"@\s*([0-9.]+)\s*GHz", name)
        if mhz:
            ghz, source = float(mhz) / 1e3, "/proc/cpuinfo cpu MHz (current or nominal; turbo may be higher)"
        elif at:
            ghz, source = float(at), "clock in the model name"
        else:
            ghz, source = 1.0, "unknown: assumed 1 GHz"
    assumptions.append(f"clock {ghz:.2f} GHz from {source}")
    assumptions.append("single core, fp32, 2 flops per FMA; memory bandwidth and latency ignored")
    return CpuPeak(model_name=name, isa=isa, fp32_lanes=lanes, fma_units=fma_units, flops_per_fma=2,
                   ghz=float(ghz), clock_source=source, assumptions=tuple(assumptions), cpu_class=info.cpu_class,
                   cpu=info.to_dict())


def cpu_peak(*, fma_units: int | None = None, ghz: float | None = None) -> CpuPeak:
    """Peak of this machine's first core (clock from Linux's /proc/cpuinfo; defaults elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    max_freq = None
    try:
        max_freq = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text().strip())
    except (OSError, ValueError):
        pass
    return parse_cpuinfo(text, max_freq_khz=max_freq, fma_units=fma_units, ghz=ghz, info=cpu_info())
