"""CPU used by each part of the delivery set-up, and CPU-bound neighbours to run beside it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil


class CpuMeter:
    """CPU seconds spent by each part of the delivery set-up between :meth:`start` and
    :meth:`stop`: the workers, their judging processes, PostgreSQL (every server process, so
    its background writers too), Redis and the fake provider. How much of the machine a rate
    needs tells on which machines the delivery target holds."""

    def __init__(self, workers: list[subprocess.Popen[bytes]], fake: subprocess.Popen[bytes]):
        self._worker_pids = [proc.pid for proc in workers]
        self._fake_pid = fake.pid
        self._before: dict[int, tuple[str, float]] = {}
        self._started = 0.0

    def _sample(self) -> dict[int, tuple[str, float]]:
        groups: dict[int, str] = {self._fake_pid: "fake"}
        for pid in self._worker_pids:
            groups[pid] = "workers"
            with _gone_is_fine():
                for child in psutil.Process(pid).children(recursive=True):
                    groups[child.pid] = "judging"
        for proc in psutil.process_iter(["name"]):
            name = proc.info["name"] or ""
            if name in ("postgres", "postmaster"):
                groups[proc.pid] = "PostgreSQL"
            elif name.startswith("redis-server"):
                groups[proc.pid] = "Redis"
        sample = {}
        for pid, group in groups.items():
            with _gone_is_fine():
                times = psutil.Process(pid).cpu_times()
                sample[pid] = (group, times.user + times.system)
        return sample

    def start(self) -> None:
        self._before = self._sample()
        self._started = time.monotonic()

    def stop(self) -> tuple[dict[str, float], float]:
        """Cores used by each part (CPU seconds per second of wall time) and in all, and the
        CPU seconds in all."""
        after = self._sample()
        wall = time.monotonic() - self._started
        used: dict[str, float] = {}
        for pid, (group, seconds) in after.items():
            earlier = self._before.get(pid, (group, 0.0))[1]
            used[group] = used.get(group, 0.0) + seconds - earlier
        cores = {group: round(seconds / wall, 2) for group, seconds in sorted(used.items())}
        cores["all"] = round(sum(used.values()) / wall, 2)
        return cores, sum(used.values())


@contextmanager
def _gone_is_fine() -> Iterator[None]:
    try:
        yield
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes at the default niceness beside the delivery: a host whose
    cores other work also wants (the API, Rasa, another tenant)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
