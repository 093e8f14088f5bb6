"""Argument parsing and the main flow; also dispatches the ``llm-server`` and ``wrapped`` subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import bench.chatstream
from bench.chatstream.common import ROOT
from bench.chatstream.fixtures import ensure_knowledge_base, forget_chat_state, session_cookies
from bench.chatstream.llm_server import serve_llm
from bench.chatstream.metrics import percentile, redis_baseline, show, show_repeats
from bench.chatstream.patches import PATCHES
from bench.chatstream.processes import Stack, start_daphne, start_llm, start_workers
from bench.chatstream.profiler import run_wrapped
from bench.chatstream.rounds import run_round


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=bench.chatstream.__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1,10,100", help="comma-separated client counts")
    parser.add_argument("--tps", type=float, default=30.0, help="tokens per second per answer")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--ramp", type=float, default=2.0, help="asks spread uniformly over this many seconds")
    parser.add_argument("--burst", action="store_true", help="also run the largest N with all asks at once")
    parser.add_argument("--tap", action="store_true", help="also run the largest N with Redis taps (diagnosis)")
    parser.add_argument("--workers", type=int, default=1, help="chat worker processes")
    parser.add_argument("--threads", type=int, default=0, help="jobs per worker (default: enough for the largest N)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra env (daphne, workers)")
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE", help="extra worker env")
    parser.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES), help="measure a proposal")
    parser.add_argument("--profile", action="store_true", help="sample daphne's and the workers' CPU by stack")
    parser.add_argument("--json", type=Path, help="write the rows here")
    return parser.parse_args()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "llm-server":
        serve_llm(int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--port" else 0)
        return
    if len(sys.argv) > 3 and sys.argv[1] == "wrapped" and sys.argv[2] == "--":
        run_wrapped(sys.argv[3:])
        return
    args = parse_args()
    counts = [int(x) for x in args.n.split(",") if x]
    threads = args.threads or max(32, -(-max(counts) // args.workers))

    os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "bench-chat"))
    from bench.stack import prepare

    prepare("bench-chat")
    stack = Stack(
        data_dir=Path(os.environ["PROTOSTAR_DATA_DIR"]).resolve(),
        profile=args.profile,
        patches=args.patch,
        env=dict(item.split("=", 1) for item in args.env),
        worker_env=dict(item.split("=", 1) for item in args.worker_env),
    )
    (stack.data_dir / "logs").mkdir(parents=True, exist_ok=True)
    ensure_knowledge_base()
    cookies = session_cookies(max(counts))
    forget_chat_state()
    rows = []
    try:
        start_llm(stack)
        start_workers(stack, args.workers, threads)
        start_daphne(stack)
        print(
            f"stack: daphne :{stack.port}, {args.workers} chat worker(s) × {threads} threads, LLM {stack.llm_url}; "
            f"{args.tokens} tokens/answer at {args.tps:g} tokens/s; env {stack.env or '-'}; worker env "
            f"{stack.worker_env or '-'}; patches {stack.patches or '-'}"
            f"{'; profiled' if args.profile else ''}",
            flush=True,
        )
        base = redis_baseline()
        baseline = {"p50_ms": percentile(base, 50), "p99_ms": percentile(base, 99), "samples": len(base)}
        print(
            f"baseline Redis XADD→XREAD BLOCK: p50 {baseline['p50_ms']:.2f} ms, p99 {baseline['p99_ms']:.2f} ms "
            f"({len(base)} entries)",
            flush=True,
        )
        warm = run_round(stack, cookies, 1, args, ramp=0, tap=False, label="warm-up")
        show(warm)
        for n in counts:
            rows.append(run_round(stack, cookies, n, args, ramp=args.ramp, tap=False, label=f"ramp {args.ramp:g}s"))
            show(rows[-1])
        if args.burst:
            rows.append(run_round(stack, cookies, max(counts), args, ramp=0, tap=False, label="burst"))
            show(rows[-1])
        if args.tap:
            rows.append(run_round(stack, cookies, max(counts), args, ramp=args.ramp, tap=True, label="tapped"))
            show(rows[-1])
        show_repeats(rows)
    finally:
        stack.stop()
    if args.json:
        config = {"workers": args.workers, "threads": threads, "tps": args.tps, "tokens": args.tokens}
        config |= {"env": stack.env, "worker_env": stack.worker_env, "patches": stack.patches, "profile": args.profile}
        args.json.write_text(json.dumps({"config": config, "baseline": baseline, "rows": rows}, indent=2))
