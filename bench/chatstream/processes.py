"""The stack's processes: the scripted LLM server, the chat workers and daphne."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chatstream.common import ENTRY, ROOT


@dataclass
class Stack:
    data_dir: Path
    llm: subprocess.Popen | None = None
    llm_url: str = ""
    daphne: subprocess.Popen | None = None
    port: int = 0
    workers: list[subprocess.Popen] = field(default_factory=list)
    profile: bool = False
    patches: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # for daphne and the workers
    worker_env: dict[str, str] = field(default_factory=dict)

    def command(self, name: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """``argv`` and its extra environment; wrapped (``run_wrapped``) when profiling or patching."""
        env = dict(self.env)
        if not self.profile and not self.patches:
            return argv, env
        if self.profile:
            env["BENCH_PROFILE"] = str(self.data_dir / "logs" / f"profile-{name}.json")
        env["BENCH_PATCHES"] = ",".join(self.patches)
        wrapped = ["daphne", *argv[1:]] if argv[0].endswith("daphne") else argv[2:]  # drop python / manage.py
        return [sys.executable, str(ENTRY), "wrapped", "--", *wrapped], env

    def stop(self) -> None:
        from bench.stack import stop

        for process in [self.daphne, *self.workers, self.llm]:
            if process is not None and process.poll() is None:
                stop(process)


def start_llm(stack: Stack) -> None:
    stack.llm = subprocess.Popen(
        [sys.executable, str(ENTRY), "llm-server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(stack.data_dir / "logs" / "bench-llm.log").open("w"),
        text=True,
    )
    stack.llm_url = stack.llm.stdout.readline().strip()
    if not stack.llm_url.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"LLM test server did not start (got {stack.llm_url!r})")


def start_workers(stack: Stack, count: int, threads: int) -> None:
    import django_rq
    from rq import Worker

    env = {
        **os.environ,
        "LLM_BASE_URL": stack.llm_url,
        "CHAT_MODEL_BACKEND": "protostar.llm.openai.OpenAIChatModel",
        "CHAT_WORKER_THREADS": str(threads),
        "LOG_LEVEL": "WARNING",
        **stack.worker_env,
    }
    # stack.command() adds the environment shared with daphne (--env) and the wrapper's settings.
    args = [sys.executable, "manage.py", "rqworker", "chat", "--worker-class", "chat.worker.ThreadedWorker"]
    for index in range(count):
        log = (stack.data_dir / "logs" / f"bench-chat-worker-{index}.log").open("w")
        command, extra = stack.command(f"worker-{index}", args)
        process = subprocess.Popen(command, cwd=ROOT, env={**env, **extra}, stdout=log, stderr=subprocess.STDOUT)
        stack.workers.append(process)
    conn = django_rq.get_connection("chat")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        pids = {w.pid for w in Worker.all(connection=conn)}
        if all(p.pid in pids for p in stack.workers):
            return
        if any(p.poll() is not None for p in stack.workers):
            raise RuntimeError("a chat worker exited during start-up (see logs/bench-chat-worker-*.log)")
        time.sleep(0.1)
    raise RuntimeError("chat workers did not register")


def start_daphne(stack: Stack) -> None:
    from protostar.services.process import find_free_ports, wait_for_port

    stack.port = find_free_ports(1)[0]
    log = (stack.data_dir / "logs" / "bench-daphne.log").open("w")
    daphne = str(Path(sys.executable).parent / "daphne")
    command, extra = stack.command(
        "daphne", [daphne, "-b", "127.0.0.1", "-p", str(stack.port), "protostar.asgi:application"]
    )
    env = {**os.environ, "LOG_LEVEL": "WARNING", **extra}
    stack.daphne = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if not wait_for_port(stack.port, timeout=60):
        raise RuntimeError("daphne did not start listening (see logs/bench-daphne.log)")
