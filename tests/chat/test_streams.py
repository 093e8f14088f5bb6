"""Reading an answer's stream: pieces read together are joined without losing, reordering or merging across events."""

from __future__ import annotations

from chat.streams import join_token_runs


def test_consecutive_tokens_are_joined_with_the_seq_of_the_last():
    entries = [
        (1, "sources", {"items": []}),
        (2, "token", {"text": "연간 "}),
        (3, "token", {"text": "최대 "}),
        (4, "token", {"text": "18일"}),
        (5, "end", {"finish_reason": "stop"}),
    ]

    assert join_token_runs(entries) == [
        (1, "sources", {"items": []}),
        (4, "token", {"text": "연간 최대 18일"}),
        (5, "end", {"finish_reason": "stop"}),
    ]


def test_a_reset_between_tokens_keeps_the_two_runs_apart():
    entries = [(1, "token", {"text": "old "}), (2, "reset", {"reason": "retry"}), (3, "token", {"text": "new"})]

    assert join_token_runs(entries) == entries


def test_single_entries_pass_unchanged():
    assert join_token_runs([(7, "token", {"text": "x"})]) == [(7, "token", {"text": "x"})]
    assert join_token_runs([]) == []
