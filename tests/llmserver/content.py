"""What the test server says: deterministic replies, word-sized stream pieces and hashed embeddings."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from protostar.text import split_pieces

__all__ = ["count_words", "default_reply", "hashed_embedding", "split_pieces", "text_of"]

LABEL = re.compile(r"\[(S\d+)\]")
HANGUL = re.compile(r"[\uac00-\ud7a3]")
WORD = re.compile(r"\w+")


def text_of(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def default_reply(messages: list[dict[str, Any]]) -> str:
    """A deterministic answer naming the source labels found in the prompt, in Korean for a Korean question."""
    labels: list[str] = []
    for message in messages:
        for label in LABEL.findall(text_of(message.get("content", ""))):
            if label not in labels:
                labels.append(label)
    question = next((text_of(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    cited = " ".join(f"[{label}]" for label in labels)
    if HANGUL.search(question):
        if labels:
            return f"제공된 자료에 근거한 테스트 답변입니다. 출처: {cited}"
        return "테스트 답변입니다. 프롬프트에 출처가 없습니다."
    if labels:
        return f"This is a test answer grounded in the provided sources. Sources: {cited}"
    return "This is a test answer. The prompt contained no sources."


def count_words(messages: list[dict[str, Any]]) -> int:
    return sum(len(text_of(m.get("content", "")).split()) for m in messages)


def hashed_embedding(text: str, dimensions: int) -> list[float]:
    """Feature hashing of words and character bigrams: deterministic across processes, and texts sharing words
    score higher than unrelated ones, so retrieval through the test server behaves plausibly."""
    vector = [0.0] * dimensions
    for word in WORD.findall(text.lower()):
        features = [word] + [word[i : i + 2] for i in range(len(word) - 1)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            number = int.from_bytes(digest, "little")
            vector[number % dimensions] += 1.0 if (number >> 63) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:
        vector[0], norm = 1.0, 1.0
    return [v / norm for v in vector]
