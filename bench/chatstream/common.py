"""Shared constants: paths, the question and reply shapes, the knowledge base."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "bench" / "chat_stream.py"  # re-invoked for the LLM server and the wrapped processes

TAG = re.compile(r"\[bench:([\w-]+)\]")
QUESTION = "How many days of paid leave do full-time employees get? [bench:{tag}]"
USERS = "bench-chat-{i:03d}"
KB_CHUNKS = [
    ("Leave policy", "Full-time employees accrue 1.5 days of paid leave per month, up to 18 days a year."),
    ("Remote work", "Employees may work remotely up to three days a week with their manager's approval."),
    ("휴가 규정", "정규직 직원은 매월 1.5일의 유급휴가가 발생하며 연간 최대 18일까지 적립됩니다."),
]
MEMORY_SAMPLE_SECONDS = 0.25


def reply_text(tokens: int) -> str:
    return " ".join(f"t{i:04d}" for i in range(1, tokens + 1))
