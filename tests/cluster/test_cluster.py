"""Several nodes cooperating on one PostgreSQL, Redis and S3: the topology of ``make cluster``, driven for real."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import pytest

from tests.cluster.conftest import NO_BALANCER, Socket, ended, log_records, manage, rows, scrape, text_of
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(600)  # the module's processes start in the first test; a busy machine is slow

LONG_REPLY = " ".join(f"단어{i} word{i}" for i in range(40)) + " [S1]."
QUESTIONS = [
    "연차는 며칠인가요?",
    "How many leave days do I get?",
    "재택근무는 며칠 가능한가요?",
    "Can I work remotely?",
]


def stored_answer(cluster, message_id: int) -> tuple[str, str]:
    """(status, content) of an answer as the cluster stored it."""
    return rows(cluster, "SELECT status, content FROM chat_message WHERE id = %s", message_id)[0]


def handled_by(cluster, kind: str) -> dict[int, str]:
    """``{message or document id: node}`` from the JSON log lines of the workers of ``kind``."""
    field = "message_id" if kind == "chat" else "document_id"
    owners: dict[int, str] = {}
    for node in cluster.workers(kind):
        for record in log_records(node.log_path):
            if field in record and record.get("message", "").startswith("Successfully completed"):
                owners[record[field]] = node.name
    return owners


def web_url(node) -> str:
    return f"http://127.0.0.1:{node.port}"


def accepted_ids(events: list[dict]) -> list[int]:
    return [event["message"] for event in events if event["type"] == "accepted"]


async def scrape_while_streaming(cluster, socket: Socket, asked: list[int]) -> dict:
    """A scrape taken while answers are in flight (scrapes repeat until one sees them, before the last answer ends;
    a scrape may take seconds on a busy machine)."""
    while True:
        figures = await asyncio.to_thread(scrape, cluster)
        if figures.get(("protostar_answers_in_flight", ()), 0) >= 1:
            return figures
        if all(ended(message_id)(socket.events) for message_id in asked):
            raise AssertionError("no scrape saw an answer in flight while they streamed")


def test_sockets_on_either_web_node_get_the_answers_of_either_chat_worker(cluster, llm_server, reader):
    cookie = reader.cookie
    # Slow enough that answers are still streaming when a scrape on a busy machine reads the figures.
    llm_server.script(reply=LONG_REPLY, tokens_per_second=10)
    before = scrape(cluster)

    async def scenario() -> tuple[dict[int, dict[str, list]], dict]:
        sockets = [await Socket.open(web_url(node), cookie) for node in cluster.web_nodes]
        for index, question in enumerate(QUESTIONS * 2):
            ask = {"type": "ask", "conversation": None, "content": question, "client_id": uuid.uuid4().hex}
            await sockets[index % len(sockets)].send(ask)
        asked: list[int] = []
        for socket in sockets:
            asked += await socket.wait_for(lambda ev: len(accepted_ids(ev)) == len(QUESTIONS) and accepted_ids(ev))
        # Every socket follows every answer: its own from the ask, the others' by resuming from the start.
        for socket in sockets:
            for message_id in set(asked) - set(accepted_ids(socket.events)):
                await socket.send({"type": "resume", "message": message_id, "after_seq": 0})
        await sockets[0].wait_for(lambda ev: any(e["type"] == "token" for e in ev))
        during = await scrape_while_streaming(cluster, sockets[0], asked)
        for socket in sockets:
            for message_id in asked:
                await socket.wait_for(ended(message_id))
        received = {m: {s.served_by or str(i): s.of(m) for i, s in enumerate(sockets)} for m in asked}
        for socket in sockets:
            await socket.close()
        return received, during

    received, during = asyncio.run(scenario())
    owners = wait_until(lambda: (o := handled_by(cluster, "chat")) and set(received) <= set(o) and o, timeout=30)
    assert {owners[m] for m in received} == {"chat1", "chat2"}, "both chat workers wrote answers"
    for message_id, per_socket in received.items():
        assert stored_answer(cluster, message_id) == ("complete", LONG_REPLY)
        assert len(per_socket) == 2
        for events in per_socket.values():
            assert text_of(events) == LONG_REPLY and events[-1]["type"] == "end"
    # Each job's log lines carry the answer's and its asker's ids.
    for node in cluster.workers("chat"):
        for record in log_records(node.log_path):
            if record.get("message_id") in received:
                assert record["user_id"] == reader.user_id

    assert during[("protostar_answers_in_flight", ())] >= 1
    after = scrape(cluster)
    ttft = ("protostar_answer_ttft_seconds_count", ())
    assert before.get(ttft, 0) <= during.get(ttft, 0) < after[ttft]
    assert after[ttft] >= before.get(ttft, 0) + len(received)
    tokens = ("protostar_tokens_streamed_total", ())
    assert after[tokens] > before.get(tokens, 0)
    assert after[("protostar_answers_total", (("status", "complete"),))] >= len(received)
    for queue in ("default", "chat", "knowledge", "summaries"):
        assert ("protostar_queue_depth", (("queue", queue),)) in during
        assert ("protostar_queue_oldest_job_age_seconds", (("queue", queue),)) in during
    assert after[("protostar_queue_workers", (("queue", "chat"),))] == 2
    assert after[("protostar_queue_workers", (("queue", "knowledge"),))] == 2


def test_a_killed_web_node_sends_its_clients_through_the_balancer_to_the_other_to_resume_exactly(
    cluster, llm_server, reader
):
    if cluster.balancer is None:
        pytest.skip(NO_BALANCER)
    cookie = reader.cookie
    llm_server.script(reply=LONG_REPLY, tokens_per_second=20)

    async def scenario() -> tuple[str, str, int, list[dict], list[dict]]:
        first = await Socket.open(cluster.url, cookie)
        second = await Socket.open(cluster.url, cookie)  # leastconn: the other node
        assert {first.served_by, second.served_by} == {"web1", "web2"}
        await first.send(
            {
                "type": "ask",
                "conversation": None,
                "content": "연차 규정을 길게 설명해 주세요",
                "client_id": uuid.uuid4().hex,
            }
        )
        accepted = await first.wait_for(lambda ev: next((e for e in ev if e["type"] == "accepted"), None))
        message_id = accepted["message"]
        await second.send({"type": "resume", "message": message_id, "after_seq": 0})
        await first.wait_for(lambda ev: len([e for e in ev if e["type"] == "token"]) >= 3)
        victim = first.served_by
        await asyncio.to_thread(cluster.kill, victim)
        await asyncio.wait_for(first.closed.wait(), 10)
        before_kill = first.of(message_id)
        last_seq = before_kill[-1]["seq"]
        # The client reconnects through the balancer, which now sends it to the surviving node.
        again = await reconnect(cluster.url, cookie)
        await again.send({"type": "resume", "message": message_id, "after_seq": last_seq})
        await again.wait_for(ended(message_id))
        await second.wait_for(ended(message_id))
        result = (victim, again.served_by, message_id, before_kill, again.of(message_id))
        untouched = second.of(message_id)
        for socket in (again, second):
            await socket.close()
        return (*result, untouched)

    victim, survivor, message_id, before, after, untouched = asyncio.run(scenario())
    assert survivor != victim and survivor in {"web1", "web2"}
    assert after[0]["seq"] > before[-1]["seq"], "nothing repeated"
    status, content = stored_answer(cluster, message_id)
    assert status == "complete"
    assert text_of(before) + text_of(after) == content == LONG_REPLY, "nothing missing"
    assert text_of(untouched) == LONG_REPLY  # the client on the other node never noticed


async def reconnect(url: str, cookie: str, timeout: float = 15.0) -> Socket:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await Socket.open(url, cookie)
        except (OSError, Exception):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)  # a client's back-off between attempts, not a synchronisation


def running_on(cluster, message_id: int) -> str | None:
    """The chat worker whose log shows it working on ``message_id`` (its JSON lines carry the id)."""
    for node in cluster.workers("chat"):
        if any(record.get("message_id") == message_id for record in log_records(node.log_path)):
            return node.name
    return None


def test_a_killed_chat_worker_has_its_answers_redone_by_the_other(cluster, llm_server, reader):
    cookie = reader.cookie
    llm_server.script(reply=LONG_REPLY, tokens_per_second=40)

    async def scenario() -> tuple[str, int, list[dict]]:
        socket = await Socket.open(cluster.url, cookie)
        ask = {
            "type": "ask",
            "conversation": None,
            "content": "휴가 규정을 길게 알려 주세요",
            "client_id": uuid.uuid4().hex,
        }
        await socket.send(ask)
        message_id = (await socket.wait_for(accepted_ids))[0]
        await socket.wait_for(lambda ev: len([e for e in ev if e["type"] == "token"]) >= 3)
        victim = await asyncio.to_thread(wait_until, lambda: running_on(cluster, message_id), timeout=10)
        await asyncio.to_thread(cluster.kill, victim)
        await socket.wait_for(ended(message_id), timeout=120)
        events = socket.of(message_id)
        await socket.close()
        return victim, message_id, events

    victim, message_id, events = asyncio.run(scenario())
    resets = [index for index, event in enumerate(events) if event["type"] == "reset"]
    assert resets and events[resets[-1]]["reason"] == "retry", "the client is told to drop the dead run's text"
    assert text_of(events[resets[-1] :]) == LONG_REPLY and events[-1]["type"] == "end"
    assert stored_answer(cluster, message_id) == ("complete", LONG_REPLY)
    survivor = wait_until(lambda: handled_by(cluster, "chat").get(message_id), timeout=30)
    assert survivor != victim


def test_ingestion_spreads_over_both_knowledge_workers_and_processes_each_document_once(cluster, reader, tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    for index in range(4):
        if index % 2:
            body = f"# 사내 규정 {index}\n\n직원은 분기마다 보안 교육 {index}회를 이수합니다. 노트북은 암호화합니다.\n"
            (folder / f"규정-{index}.md").write_text(body, encoding="utf-8")
        else:
            body = f"Policy {index}\n\nEvery employee completes {index} security trainings a quarter.\n"
            (folder / f"policy-{index}.txt").write_text(body, encoding="utf-8")
    output = manage(cluster.env, "ingest", str(folder), "--json", "--user", reader.username)
    ids = [json.loads(line)["id"] for line in output.splitlines() if line.startswith("{")]
    assert len(ids) == 4 and all(ids)

    def statuses() -> dict[int, str]:
        return dict(rows(cluster, "SELECT id, status FROM knowledge_document WHERE id = ANY(%s)", ids))

    wait_until(
        lambda: set(statuses().values()) <= {"ready", "failed"}, timeout=300, interval=0.2, message="every document"
    )
    assert set(statuses().values()) == {"ready"}
    runs: Counter[int] = Counter()
    nodes: dict[int, str] = {}
    for node in cluster.workers("knowledge"):
        for record in log_records(node.log_path):
            document_id = record.get("document_id")
            if document_id in ids and record["message"].startswith(f"document {document_id} ingested"):
                runs[document_id] += 1
                nodes[document_id] = node.name
                assert record["user_id"] == reader.user_id
    assert runs == Counter(dict.fromkeys(ids, 1)), "each document processed exactly once"
    assert set(nodes.values()) == {"knowledge1", "knowledge2"}, "both knowledge workers took documents"
    counted = rows(
        cluster,
        "SELECT d.chunk_count, count(c.id) FROM knowledge_document d JOIN knowledge_chunk c ON c.document_id = d.id "
        "WHERE d.id = ANY(%s) GROUP BY d.id",
        ids,
    )
    assert len(counted) == 4 and all(stored == found > 0 for stored, found in counted)
    assert scrape(cluster)[("protostar_ingestion_pages_total", ())] >= 4
