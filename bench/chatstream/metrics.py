"""Measurement: percentiles, memory and CPU sampling, the Redis baseline and the printed report."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

from bench.chatstream.common import MEMORY_SAMPLE_SECONDS

if TYPE_CHECKING:
    from bench.chatstream.processes import Stack


def percentile(values: list[float], pct: float) -> float:
    from bench.stack import percentile as pick

    return pick(values, pct)


# --- memory -----------------------------------------------------------------------------------------------------


class MemorySampler(threading.Thread):
    """Peak of the summed RSS of the stack's process trees (children included), per component and in total."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        super().__init__(name="memory-sampler", daemon=True)
        import psutil

        self.roots = {name: [psutil.Process(pid) for pid in pids if pid] for name, pids in roots.items()}
        self.halt = threading.Event()
        self.peak_total = 0
        self.peak_parts: dict[str, int] = {}
        self.processes_at_peak = 0
        self.cpu_first: dict[int, float] = {}  # pid → user+system CPU seconds when first seen / last seen
        self.cpu_last: dict[int, float] = {}
        self.part_of: dict[int, str] = {}
        self.samples = 0
        self.peak_pss = 0  # proportional set size (shared pages split between processes), every 4th sample

    def sample(self) -> tuple[int, dict[str, int], int]:
        import psutil

        parts, count, pss = {}, 0, 0
        with_pss = self.samples % 4 == 0
        self.samples += 1
        for name, roots in self.roots.items():
            total = 0
            for root in roots:
                try:
                    tree = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for process in tree:
                    try:
                        total += process.memory_info().rss
                        pss += process.memory_full_info().pss if with_pss else 0
                        times = process.cpu_times()
                        count += 1
                    except psutil.Error:
                        continue
                    self.part_of[process.pid] = name
                    self.cpu_first.setdefault(process.pid, times.user + times.system)
                    self.cpu_last[process.pid] = times.user + times.system
            parts[name] = total
        self.peak_pss = max(self.peak_pss, pss)
        return sum(parts.values()), parts, count

    def run(self) -> None:
        while True:
            total, parts, count = self.sample()
            if total > self.peak_total:
                self.peak_total, self.peak_parts, self.processes_at_peak = total, parts, count
            if self.halt.wait(MEMORY_SAMPLE_SECONDS):
                return

    def finish(self) -> None:
        self.halt.set()
        self.join(10)
        self.sample()

    @property
    def cpu_seconds(self) -> float:
        """CPU the stack used while sampled (short-lived postgres backends between two samples are missed)."""
        return sum(self.cpu_last[pid] - self.cpu_first[pid] for pid in self.cpu_last)

    @property
    def cpu_seconds_by_part(self) -> dict[str, float]:
        parts: dict[str, float] = defaultdict(float)
        for pid, last in self.cpu_last.items():
            parts[self.part_of[pid]] += last - self.cpu_first[pid]
        return dict(parts)


def memory_roots(stack: Stack) -> dict[str, list[int]]:
    from protostar.services.launcher import Launcher

    services = {service.name: service.pid() for service in Launcher(stack.data_dir).services}
    return {
        "daphne": [stack.daphne.pid],
        "worker": [w.pid for w in stack.workers],
        "postgres": [services.get("postgres")],
        "redis": [services.get("redis")],
        "s3": [services.get("s3")],
    }


# --- baseline ---------------------------------------------------------------------------------------------------


def redis_baseline(count: int = 300, rate: float = 100.0) -> list[float]:
    """XADD→XREAD BLOCK latency (ms) on the app's Redis: one paced writer thread, one blocked reader."""
    import redis
    from django.conf import settings

    key = f"bench:baseline:{uuid.uuid4().hex}"
    writer = redis.Redis.from_url(settings.REDIS_URL)
    reader = redis.Redis.from_url(settings.REDIS_URL)
    latencies: list[float] = []

    def read() -> None:
        last = "0-0"
        deadline = time.monotonic() + count / rate + 10
        while len(latencies) < count and time.monotonic() < deadline:
            reply = reader.xread({key: last}, count=500, block=1000)
            now = time.time()
            for entry_id, fields in reply[0][1] if reply else []:
                latencies.append((now - float(fields[b"t"])) * 1000)
                last = entry_id

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    time.sleep(0.05)
    started = time.monotonic()
    for i in range(count):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        writer.xadd(key, {"t": repr(time.time())})
    thread.join(15)
    writer.delete(key)
    return latencies


def resource_fields(
    sampler: MemorySampler, idle_total: int, harness_cpu: float, busy: float, elapsed: float, load_before: float
) -> dict:
    """A round's memory and CPU columns; ``harness_cpu`` and ``busy`` are CPU seconds over ``elapsed``."""
    peak = sampler.peak_total
    return {
        "memory_idle_mib": idle_total / 2**20,
        "memory_peak_mib": peak / 2**20,
        "memory_peak_parts_mib": {k: round(v / 2**20, 1) for k, v in sampler.peak_parts.items()},
        "processes_at_peak": sampler.processes_at_peak,
        # CPU over the round in cores (2 = the whole machine): our stack, the harness (clients + LLM server), others.
        "cpu_stack_cores": sampler.cpu_seconds / elapsed,
        "cpu_stack_by_part_s": {k: round(v, 2) for k, v in sampler.cpu_seconds_by_part.items()},
        "memory_peak_pss_mib": sampler.peak_pss / 2**20,
        "cpu_harness_cores": harness_cpu / elapsed,
        "cpu_machine_cores": busy / elapsed,
        "cpu_other_cores": max(0.0, (busy - sampler.cpu_seconds - harness_cpu) / elapsed),
        "load_1min": (load_before + os.getloadavg()[0]) / 2,
    }


# --- the report -------------------------------------------------------------------------------------------------


def show(row: dict) -> None:
    ms = lambda v: f"{v:8.1f}"  # noqa: E731
    line = (
        f"{row['label']:<16} N={row['n']:<4} relay p50 {ms(row['relay_p50_ms'])} p99 {ms(row['relay_p99_ms'])} "
        f"max {ms(row['relay_max_ms'])} ms (p99 while answers start {row['relay_p99_starting_ms']:.1f}, "
        f"after {row['relay_p99_streaming_ms']:.1f}) | TTFT added p50 {ms(row['ttft_added_p50_ms'])} "
        f"p99 {ms(row['ttft_added_p99_ms'])} ms (accepted p50 {row['accepted_p50_ms']:.0f}) | lost {row['lost']} "
        f"(replayed answers {row['replayed_answers']}, tokens not streamed {row['not_streamed']}) "
        f"disordered {row['disordered']} "
        f"dup {row['duplicates']} mismatch {row['mismatched']} failed {row['failed_clients']} | "
        f"mem peak {row['memory_peak_mib']:.0f} MiB ({row['memory_peak_parts_mib']})\n{'':16} CPU cores: stack "
        f"{row['cpu_stack_cores']:.2f}, harness {row['cpu_harness_cores']:.2f}, other processes "
        f"{row['cpu_other_cores']:.2f}, machine {row['cpu_machine_cores']:.2f} of {os.cpu_count()}; "
        f"load {row['load_1min']:.1f}; wall {row['wall_s']:.1f} s\n{'':16} stack CPU s by part "
        f"{row['cpu_stack_by_part_s']}; memory peak PSS {row['memory_peak_pss_mib']:.0f} MiB\n{'':16} "
        "added TTFT p50 split (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in row["ttft_split_p50_ms"].items())
    )
    print(line, flush=True)
    if row["tap"]:
        print(
            f"{'':16} model→redis p50 {ms(row['model_to_redis_p50_ms'])} p99 {ms(row['model_to_redis_p99_ms'])} ms | "
            f"redis→client p50 {ms(row['redis_to_client_p50_ms'])} p99 {ms(row['redis_to_client_p99_ms'])} ms",
            flush=True,
        )
    for error in row["errors"]:
        print(f"{'':16} client error: {error}", flush=True)
    for anomaly in row["anomalies"][:5]:
        print(f"{'':16} {anomaly}", flush=True)


TTFT_GOAL_MS = 150.0


def show_repeats(rows: list[dict]) -> None:
    """For each N run in several rounds (``--n 1,1,1,…``), the spread of the rounds' figures: an N = 1 round is one
    question, so its TTFT "p50" is a single sample and only many rounds say what a user typically waits."""
    by_n: dict[int, list[dict]] = {}
    for row in rows:
        if row["label"].startswith("ramp"):
            by_n.setdefault(row["n"], []).append(row)
    for n, group in sorted(by_n.items()):
        if len(group) < 2:
            continue
        ttft = sorted(row["ttft_added_p50_ms"] for row in group)
        relay = sorted(row["relay_p99_ms"] for row in group)
        within = sum(value <= TTFT_GOAL_MS for value in ttft)
        print(
            f"N={n} over {len(group)} rounds: added TTFT p50 median {percentile(ttft, 50):.1f} ms "
            f"(range {ttft[0]:.1f}–{ttft[-1]:.1f}; ≤ {TTFT_GOAL_MS:g} ms in {within} of {len(group)}), "
            f"relay p99 median {percentile(relay, 50):.1f} ms (range {relay[0]:.1f}–{relay[-1]:.1f})",
            flush=True,
        )
