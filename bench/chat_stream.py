"""Chat streaming benchmark: per-token relay latency, added TTFT, lost tokens and memory through the real stack.

    .venv/bin/python bench/chat_stream.py [--n 1,10,100] [--tps 30] [--tokens 200] [--ramp 2] [--burst] [--tap]

The code lives in the ``bench.chatstream`` package (see its docstring); this file stays the entry point, and the
benchmark re-invokes it for its ``llm-server`` and ``wrapped`` subprocesses.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.chatstream.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
