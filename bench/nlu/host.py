"""The machine the benchmark runs on, recorded with the results."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    ram_gib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        meminfo = Path("/proc/meminfo").read_text()
        kib = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
        ram_gib = round(int(kib.group(1)) / 1024**2, 1) if kib else None
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "ram_gib": ram_gib,
        "load_average_at_start": round(os.getloadavg()[0], 1),
    }
