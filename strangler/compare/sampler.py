"""CPU and memory of a set of processes, sampled from a thread, read back over any window.

    sampler = Sampler(system=lambda: {123: "proxy", 124: "monolith"}, generator=lambda: [200])
    sampler.start()
    ...                                   # the load runs
    sampler.stop()
    sampler.resources(started_at, ended_at)   # loadtests.results.Resources over that window

Every `interval` seconds it reads each process's user+system CPU time and its proportional set
size (PSS: shared pages divided among the processes sharing them, so gunicorn's forked workers
are not counted once per worker). CPU over a window is the difference of the cumulative totals
at its ends, interpolated between samples; a process that exits keeps what it spent, and the
lists of processes are asked again at every sample, so new workers are counted from their
start. This module must never start or stop the processes it watches.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil

from strangler.compare.results import Resources

MIB = 1024 * 1024


@dataclass
class Sample:
    at: float
    cpu_by_role: dict[str, float]  # cumulative CPU seconds since the sampler started
    generator_cpu: dict[int, float]  # cumulative, per locust process
    memory_mib: float  # the system's processes' PSS, summed, at this moment


@dataclass
class Sampler:
    system: Callable[[], dict[int, str]]  # pid -> role, the system's processes and workers
    generator: Callable[[], Iterable[int]]  # the load generator's processes
    interval: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _first: dict[int, float] = field(default_factory=dict)  # pid -> CPU when first seen
    _last: dict[int, float] = field(default_factory=dict)  # pid -> CPU when last seen
    _role: dict[int, str] = field(default_factory=dict)
    _handles: dict[int, psutil.Process] = field(default_factory=dict)

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sample()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """Read every watched process once, now."""
        at = time.time()
        memory = 0.0
        for pid, role in self.system().items():
            self._role[pid] = role
            cpu, pss = self._read(pid, with_memory=True)
            if cpu is not None:
                self._seen(pid, cpu)
                memory += pss
        generator: dict[int, float] = {}
        for pid in self.generator():
            self._role.setdefault(pid, "generator")
            cpu, _ = self._read(pid, with_memory=False)
            if cpu is not None:
                self._seen(pid, cpu)
        by_role: dict[str, float] = {}
        for pid, last in self._last.items():
            spent = last - self._first[pid]
            role = self._role[pid]
            if role == "generator":
                generator[pid] = spent
            else:
                by_role[role] = by_role.get(role, 0.0) + spent
        self.samples.append(Sample(at, by_role, generator, memory / MIB))

    def _seen(self, pid: int, cpu: float) -> None:
        # A process there at the first sample counts from then; a later one from its start.
        self._first.setdefault(pid, 0.0 if self.samples else cpu)
        self._last[pid] = cpu

    def _read(self, pid: int, with_memory: bool) -> tuple[float | None, float]:
        try:
            handle = self._handles.get(pid)
            if handle is None:
                handle = self._handles[pid] = psutil.Process(pid)
            with handle.oneshot():
                times = handle.cpu_times()
                pss = handle.memory_full_info().pss if with_memory else 0.0
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            self._handles.pop(pid, None)
            return None, 0.0
        except psutil.AccessDenied:
            return None, 0.0
        return times.user + times.system, float(pss)

    def resources(self, started_at: float, ended_at: float) -> Resources:
        """What the processes spent between two moments (epoch seconds)."""
        before, after = self._at(started_at), self._at(ended_at)
        roles = sorted(set(before.cpu_by_role) | set(after.cpu_by_role))
        by_role = {
            role: max(0.0, after.cpu_by_role.get(role, 0.0) - before.cpu_by_role.get(role, 0.0))
            for role in roles
        }
        seconds = max(ended_at - started_at, 1e-9)
        generator = {
            pid: max(0.0, spent - before.generator_cpu.get(pid, 0.0))
            for pid, spent in after.generator_cpu.items()
        }
        inside = [s.memory_mib for s in self.samples if started_at <= s.at <= ended_at]
        return Resources(
            cpu_seconds=sum(by_role.values()),
            cpu_seconds_by_role=by_role,
            peak_memory_mib=max(inside, default=after.memory_mib),
            generator_cpu_seconds=sum(generator.values()),
            generator_busiest_core=max(generator.values(), default=0.0) / seconds,
        )

    def _at(self, moment: float) -> Sample:
        """The cumulative figures at a moment, interpolated between the samples around it."""
        times = [sample.at for sample in self.samples]
        index = bisect.bisect_left(times, moment)
        if index == 0:
            return self.samples[0]
        if index == len(self.samples):
            return self.samples[-1]
        low, high = self.samples[index - 1], self.samples[index]
        share = (moment - low.at) / (high.at - low.at) if high.at > low.at else 1.0

        def mix(a: dict, b: dict) -> dict:
            return {key: a.get(key, 0.0) + share * (b[key] - a.get(key, 0.0)) for key in b}

        return Sample(
            moment,
            mix(low.cpu_by_role, high.cpu_by_role),
            mix(low.generator_cpu, high.generator_cpu),
            low.memory_mib + share * (high.memory_mib - low.memory_mib),
        )
