"""What a benchmark ran on: CPU model, cores, load, memory, torch version, accelerator.

torch is imported inside the functions that need it: process-pool workers spawned by a
benchmark re-import the main module and what it imports, and need no torch.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime

from waymo_unet.data.parallel import available_cores

# Dense (no sparsity) bf16/fp16 tensor-core peak, TFLOP/s, by whole words of the GPU's
# name ("A10" is not "A10G"); the first match wins, so more specific names come first.
GPU_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200", 989.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("A10", 125.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("V100", 125.0),
    ("T4", 65.0),
)


# Dense fp32 peaks, TFLOP/s: (CUDA cores, TF32 tensor cores), by whole words of the GPU's
# name, matched as the bf16/fp16 table above; the first match wins.
# Source: NVIDIA's data sheets (H100/H200 "Tensor Core GPU", A100, A10, L40S, L40, L4,
# V100, T4), which print tensor-core rates "with sparsity": halved here to dense. Their
# dense bf16 peaks, H100 SXM 989, are those above. V100 and T4 have no TF32.
FP32_PEAK_TFLOPS: tuple[tuple[str, float, float | None], ...] = (
    ("H100 PCIe", 51.0, 378.0),
    ("H100 NVL", 60.0, 417.5),
    ("H200", 67.0, 494.7),
    ("H100", 67.0, 494.7),  # SXM5
    ("A100", 19.5, 156.0),
    ("A10", 31.2, 62.5),
    ("L40S", 91.6, 183.0),
    ("L40", 90.5, 90.5),
    ("L4", 30.3, 60.0),
    ("V100", 15.7, None),
    ("T4", 8.1, None),
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine skews every rate measured."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16/fp16 peak of a GPU by name, or None when it is not in the table."""
    for words, peak in GPU_PEAK_TFLOPS:
        if re.search(rf"\b{re.escape(words)}\b", device_name, re.IGNORECASE):
            return peak
    return None


def conv_peak(precision: str, device_name: str) -> tuple[str, float | None]:
    """The dense peak (name, TFLOP/s) the convolutions of ``precision`` can reach on a GPU."""
    if precision != "fp32":
        return f"{precision} dense", peak_tflops(device_name)
    fp32, tf32 = None, None
    for words, cuda_cores, tensor_cores in FP32_PEAK_TFLOPS:
        if re.search(rf"\b{re.escape(words)}\b", device_name, re.IGNORECASE):
            fp32, tf32 = cuda_cores, tensor_cores
            break
    import torch

    if tf32 is not None and torch.backends.cudnn.allow_tf32:
        return "tf32 dense", tf32
    return "fp32", fp32


def describe_machine() -> dict[str, object]:
    """A flat description printed above every benchmark table and stored with its JSON."""
    import torch

    from waymo_unet.devices import cpu_has_native_bf16

    machine: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": available_cores(),
        "logical_cpus": os.cpu_count(),
        "load_average_1m": load_average(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        machine["device"] = properties.name
        machine["gpu_memory_gib"] = round(properties.total_memory / 2**30, 1)
        machine["gpu_peak_tflops"] = peak_tflops(properties.name) or "unknown"
        machine["cuda"] = torch.version.cuda
    return machine


def format_table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """A plain-text table with right-aligned numbers."""

    def cell(value: object) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:,.2f}" if value == 0 or abs(value) >= 1 else f"{value:.3g}"
        return str(value)

    cells = [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)
