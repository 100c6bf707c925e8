"""What a benchmark ran on: CPU model, cores, memory, torch version, accelerator."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime

import torch

from waymo_unet.data.parallel import available_cores
from waymo_unet.training.precision import cpu_has_native_bf16


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> dict[str, object]:
    """A flat description printed above every benchmark table and stored with its JSON."""
    machine: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": available_cores(),
        "logical_cpus": os.cpu_count(),
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
        machine["cuda"] = torch.version.cuda
    return machine


def format_table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """A plain-text table with right-aligned numbers."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}"
        return str(value)

    cells = [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)
