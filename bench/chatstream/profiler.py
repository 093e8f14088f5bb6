"""An on-CPU sampling profiler for the stack's processes (diagnosis) and the wrapped process entry."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.chatstream.patches import apply_patches

if TYPE_CHECKING:
    from bench.chatstream.processes import Stack


def run_wrapped(argv: list[str]) -> None:
    """Run daphne or ``manage.py rqworker`` in this process, with ``BENCH_PATCHES`` applied and, when
    ``BENCH_PROFILE`` names a file, a sampler that charges each thread's CPU time (``pthread_getcpuclockid``) since
    the last sample to its current Python stack. SIGUSR2 writes what was sampled since the previous SIGUSR2 to
    ``<out>-<label>.json`` (label read from ``<out>.label``) and starts afresh."""
    import collections

    apply_patches([name for name in os.environ.get("BENCH_PATCHES", "").split(",") if name])
    if not os.environ.get("BENCH_PROFILE"):
        return launch(argv)
    out = Path(os.environ["BENCH_PROFILE"])

    state: dict[str, Any] = {}
    last: dict[int, float] = {}
    lock = threading.Lock()

    def reset() -> None:
        state.update(
            self_cpu=collections.Counter(),
            inclusive=collections.Counter(),
            by_thread=collections.Counter(),
            started=time.monotonic(),
            cpu=time.process_time(),
        )

    def group(name: str) -> str:
        return re.sub(r"[-_]?\d+(_\d+)?$", "", name)

    def where(frame) -> str:
        return f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"

    def sample() -> None:
        me = threading.get_ident()
        while True:
            time.sleep(0.01)
            frames = sys._current_frames()
            names = {t.ident: t.name for t in threading.enumerate()}
            with lock:
                for ident, frame in frames.items():
                    if ident == me:
                        continue
                    try:
                        cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
                    except (OSError, OverflowError):
                        continue
                    spent, last[ident] = cpu - last.get(ident, cpu), cpu
                    if spent <= 0:
                        continue
                    state["by_thread"][group(names.get(ident, "?"))] += spent
                    state["self_cpu"][where(frame)] += spent
                    seen = set()
                    while frame is not None:
                        key = where(frame)
                        if key not in seen:
                            seen.add(key)
                            state["inclusive"][key] += spent
                        frame = frame.f_back

    def dump(*_: Any) -> None:
        label_file = out.with_suffix(".label")
        label = label_file.read_text().strip() if label_file.exists() else "final"

        def top(counter):
            return [(k, round(v, 3)) for k, v in counter.most_common(80)]

        with lock:
            report = {
                "argv": argv,
                "label": label,
                "wall_s": time.monotonic() - state["started"],
                "process_cpu_s": time.process_time() - state["cpu"],
                "by_thread_s": top(state["by_thread"]),
                "self_s": top(state["self_cpu"]),
                "inclusive_s": top(state["inclusive"]),
            }
            reset()
        out.with_name(f"{out.stem}-{label}.json").write_text(json.dumps(report, indent=1))

    reset()
    signal.signal(signal.SIGUSR2, dump)
    threading.Thread(target=sample, name="bench-sampler", daemon=True).start()
    launch(argv)


def launch(argv: list[str]) -> None:
    if argv[0] == "daphne":
        from daphne.cli import CommandLineInterface

        sys.argv = argv
        CommandLineInterface.entrypoint()
    else:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", *argv])


def profile_mark(stack: Stack, label: str) -> None:
    """Make every profiled process write what it sampled since the last mark as ``label`` (see ``run_profiled``)."""
    if not stack.profile:
        return
    processes = {"daphne": stack.daphne, **{f"worker-{i}": w for i, w in enumerate(stack.workers)}}
    for name, process in processes.items():
        out = stack.data_dir / "logs" / f"profile-{name}.json"
        out.with_suffix(".label").write_text(label)
        os.kill(process.pid, signal.SIGUSR2)
    time.sleep(0.5)
