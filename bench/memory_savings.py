"""Conversation memory: prompt tokens with memory vs with the full history, and planted facts kept, over 30 turns.

Runs two long conversations (English, Korean) through the real code: each turn stores the question and a pending
answer as ``conversation_ask`` does, runs the chat job (``chat.answering.answer_message``: retrieval, the
token-budgeted context builder, the embedded extractive answerer), then drains the ``summaries`` queue with an rq
worker in this process (the memory job, offline summarizer). Facts (names, numbers, dates, decisions) are planted
in the first turns; at each turn the script checks which of them are still in the prompt's memory + recent window.

    PROTOSTAR_DATA_DIR=.data/bench-memory .venv/bin/python bench/memory_savings.py [--turns 30] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PROTOSTAR_DATA_DIR", str(Path(__file__).resolve().parents[1] / ".data" / "bench-memory"))
from bench.stack import prepare

CHUNKS = [
    (
        "Leave",
        "Full-time employees accrue 1.5 days of paid leave per month, up to 18 days a year. Unused leave "
        "expires on 31 March and cannot be carried over. Leave requests go through the HR portal.",
    ),
    (
        "Remote work",
        "Employees may work remotely up to three days a week with their manager's approval. Remote "
        "days are recorded in the HR portal by Friday of the previous week.",
    ),
    (
        "Travel",
        "Economy class is the default for flights under six hours. Business class needs a director's "
        "approval. Hotel costs are reimbursed up to 180 USD per night in large cities.",
    ),
    (
        "Expenses",
        "Expense claims must be filed within 30 days with receipts. Claims over 500 USD need the approval "
        "of the cost-centre owner. Reimbursement is paid with the next monthly salary.",
    ),
    (
        "Training",
        "Each employee has a training budget of 1,200 USD a year. Courses longer than five days need "
        "HR approval. Certificates are stored in the learning portal.",
    ),
    (
        "Equipment",
        "New employees receive a laptop and a monitor. Replacement laptops are issued every four years. "
        "Lost equipment must be reported to IT within 24 hours.",
    ),
    (
        "휴가",
        "정규직 직원은 매월 1.5일의 유급휴가가 발생하며 연간 최대 18일까지 적립됩니다. 사용하지 않은 휴가는 "
        "3월 31일에 소멸되며 이월할 수 없습니다.",
    ),
    (
        "재택근무",
        "직원은 관리자의 승인을 받아 주 3일까지 재택근무를 할 수 있습니다. 재택근무일은 전주 금요일까지 "
        "인사 포털에 등록합니다.",
    ),
    (
        "출장",
        "비행시간 6시간 미만의 항공권은 일반석이 기본입니다. 비즈니스석은 이사 승인이 필요합니다. 대도시 "
        "숙박비는 1박 180달러까지 환급됩니다.",
    ),
    (
        "경비",
        "경비 청구는 영수증과 함께 30일 이내에 해야 합니다. 500달러를 넘는 청구는 비용센터 책임자의 승인이 "
        "필요합니다. 환급금은 다음 달 급여와 함께 지급됩니다.",
    ),
    ("교육", "직원 1인당 연간 교육 예산은 1,200달러입니다. 5일을 넘는 과정은 인사팀 승인이 필요합니다."),
    (
        "장비",
        "신규 직원은 노트북과 모니터를 받습니다. 노트북은 4년마다 교체됩니다. 분실한 장비는 24시간 이내에 "
        "IT팀에 신고해야 합니다.",
    ),
]

ENGLISH_QUESTIONS = [
    "Hi, I'm Mina Park and I lead the Busan logistics team of 14 people. How many leave days do we get a year?",
    "We decided to go with Acme Travel as our travel agency for the team. Our contact there is Jisoo Han. "
    "Can we book business class?",
    "Our team offsite is on March 5 at 2 pm in Jeju, and the total budget is $45,000. Who approves expenses?",
    "Jae Kim agreed to approve my team's requests from April 10 to April 24 while I am away. Can leave carry over?",
    "The project code for all of this is PX-2024-17, please keep it in mind. How long do expense claims take?",
    "How many days a week can my team work remotely?",
    "What is the hotel limit per night in large cities?",
    "When do I have to file an expense claim?",
    "How much is the training budget per employee?",
    "Who approves a course that lasts more than five days?",
    "How often are laptops replaced?",
    "What should someone do after losing a laptop?",
    "Where are remote days recorded, and by when?",
    "Which claims need the approval of the cost-centre owner?",
    "When is reimbursement paid?",
]
ENGLISH_FACTS = [
    (1, "Mina Park"),
    (1, "14 people"),
    (2, "Acme Travel"),
    (2, "Jisoo Han"),
    (3, "March 5"),
    (3, "2 pm"),
    (3, "$45,000"),
    (4, "Jae Kim"),
    (4, "April 10"),
    (5, "PX-2024-17"),
    (2, "decided"),
]
KOREAN_QUESTIONS = [
    "안녕하세요, 저는 부산 물류팀 팀장 김서연이고 팀원은 12명입니다. 연차는 1년에 며칠인가요?",
    "팀 출장 여행사는 한빛여행사로 결정했습니다. 담당자는 한지수 대리입니다. 비즈니스석을 예약해도 되나요?",
    "팀 워크숍은 3월 5일 오후 2시 제주에서 열리고 총예산은 4,500만 원입니다. 경비는 누가 승인하나요?",
    "제가 없는 4월 10일부터 4월 24일까지는 박지훈 과장이 승인을 맡기로 합의했습니다. 휴가 이월이 되나요?",
    "이 건의 프로젝트 코드는 PX-2024-17이니 기억해 주세요. 경비 청구 기한은 언제인가요?",
    "팀원은 주 며칠까지 재택근무를 할 수 있나요?",
    "대도시 숙박비 한도는 1박에 얼마인가요?",
    "경비 청구는 언제까지 해야 하나요?",
    "직원 1인당 교육 예산은 얼마인가요?",
    "5일이 넘는 교육 과정은 누가 승인하나요?",
    "노트북은 몇 년마다 교체되나요?",
    "노트북을 잃어버리면 어떻게 해야 하나요?",
    "재택근무일은 어디에 언제까지 등록하나요?",
    "비용센터 책임자의 승인이 필요한 청구는 무엇인가요?",
    "환급금은 언제 지급되나요?",
]
KOREAN_FACTS = [
    (1, "김서연"),
    (1, "12명"),
    (2, "한빛여행사"),
    # A fact that stands alone in its sentence: a Korean name and title, no number, date or capital letter.
    (2, "한지수 대리"),
    (2, "결정"),
    (3, "3월 5일"),
    (3, "오후 2시"),
    (3, "4,500만 원"),
    (4, "박지훈"),
    (4, "4월 10일"),
    (5, "PX-2024-17"),
]
CONVERSATIONS = [
    {"language": "English", "questions": ENGLISH_QUESTIONS, "facts": ENGLISH_FACTS},
    {"language": "Korean", "questions": KOREAN_QUESTIONS, "facts": KOREAN_FACTS},
]
SUMMARY_BLOCK = re.compile(r"<conversation_summary>(.*?)</conversation_summary>", re.S)


@dataclass
class TurnRow:
    turn: int
    used: int
    full: int
    spent: int  # tokens spent on summaries so far (cumulative)
    version: int | None
    facts_kept: int
    facts_total: int

    @property
    def saving(self) -> float:
        return 1 - self.used / self.full

    def net(self) -> float:
        # The memory's production cost spread over the turns so far: the steady per-turn cost of having it.
        return 1 - (self.used + self.spent / self.turn) / self.full


def knowledge_base() -> None:
    from knowledge.models import Document
    from tests.knowledge.factories import ready_document

    if Document.objects.filter(title="Memory bench handbook").exists():
        return
    ready_document(title="Memory bench handbook", chunks=CHUNKS)


class PromptRecorder:
    """Keeps the last request the chat job built (wraps ``chat.answering.build_messages``)."""

    def __init__(self) -> None:
        from chat import answering

        self.last = None
        original = answering.build_messages

        def recording(message, hits, **kwargs):
            self.last = original(message, hits, **kwargs)
            return self.last

        answering.build_messages = recording

    def memory_and_window(self) -> str:
        messages = self.last.messages
        summary = SUMMARY_BLOCK.search(messages[0]["content"])
        return "\n".join([summary.group(1) if summary else "", *(m["content"] for m in messages[1:-1])])


def drain_summaries() -> None:
    import django_rq
    from rq import SimpleWorker

    queue = django_rq.get_queue("summaries")
    SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")


def run_turn(conversation, question: str) -> None:
    from chat import answering
    from chat.models import Message

    asked = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=question, status=Message.Status.COMPLETE
    )
    pending = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, reply_to=asked, status=Message.Status.PENDING
    )
    status = answering.answer_message(message_id=pending.pk)
    if status != Message.Status.COMPLETE:
        raise RuntimeError(f"turn failed: {status} {Message.objects.get(pk=pending.pk).error}")
    drain_summaries()


def run_conversation(user, script: dict, turns: int, recorder: PromptRecorder, server=None) -> list[TurnRow]:
    from chat.models import Conversation, Message
    from chat.selectors import conversation_token_totals

    conversation = Conversation.objects.create(owner=user, title=f"memory bench {script['language']}")
    questions = script["questions"]
    rows = []
    for turn in range(1, turns + 1):
        question = questions[(turn - 1) % len(questions)]
        if server is not None:
            server.script(reply=typical_answer(question, turn, script["language"] == "Korean"))
        run_turn(conversation, question)
        answer = Message.objects.filter(conversation=conversation, role="assistant").order_by("-pk").first()
        prompt = recorder.memory_and_window()
        planted = [fact for planted_at, fact in script["facts"] if planted_at < turn]
        rows.append(
            TurnRow(
                turn=turn,
                used=answer.context_tokens,
                full=answer.full_history_tokens,
                spent=conversation_token_totals(conversation_id=conversation.pk).summary_spent_tokens,
                version=answer.memory_version,
                facts_kept=sum(fact in prompt for fact in planted),
                facts_total=len(planted),
            )
        )
    return rows


def print_table(language: str, rows: list[TurnRow], every: int) -> None:
    print(f"\n### {language}: prompt tokens per turn\n")
    print(
        "| turn | with memory | full history | saving | memory version | summary tokens spent | net saving "
        "| facts kept |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if row.turn % every and row.turn not in (1, len(rows)):
            continue
        facts = f"{row.facts_kept}/{row.facts_total}" if row.facts_total else "–"
        print(
            f"| {row.turn} | {row.used:,} | {row.full:,} | {row.saving:.1%} | {row.version or '–'} "
            f"| {row.spent:,} | {row.net():.1%} | {facts} |"
        )
    used, full, spent = sum(r.used for r in rows), sum(r.full for r in rows), rows[-1].spent
    print(
        f"\nTurns 1–{len(rows)} together: {used:,} prompt tokens with memory vs {full:,} with the full history "
        f"(saving {1 - used / full:.1%}; net of {spent:,} summary tokens {1 - (used + spent) / full:.1%})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--every", type=int, default=5, help="print every Nth turn (and the first and last)")
    parser.add_argument(
        "--answers",
        choices=["extractive", "llm"],
        default="extractive",
        help="extractive: the embedded answerer; llm: the OpenAI-compatible test server with answers of typical "
        "LLM length (~200 tokens). The summarizer is the offline default either way.",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object at the end")
    args = parser.parse_args()
    server = start_llm_server() if args.answers == "llm" else None
    prepare("bench-memory")
    from django.conf import settings
    from django.contrib.auth import get_user_model

    knowledge_base()
    user = get_user_model().objects.create_user(f"memory-bench-{uuid.uuid4().hex[:8]}")
    recorder = PromptRecorder()
    print(
        f"chat model {settings.CHAT_MODEL_BACKEND.rsplit('.', 1)[-1]}, summarizer "
        f"{settings.SUMMARIZER_BACKEND.rsplit('.', 1)[-1]}, tokenizer {settings.TOKENIZER_ENCODING}; budgets total "
        f"{settings.CONTEXT_BUDGET_TOTAL}, passages {settings.CONTEXT_BUDGET_PASSAGES}, memory "
        f"{settings.CONTEXT_BUDGET_MEMORY}, recent {settings.CONTEXT_BUDGET_RECENT}; trigger "
        f"{settings.MEMORY_TRIGGER_TOKENS}, kept verbatim {settings.MEMORY_KEEP_RECENT_MESSAGES} messages"
    )
    summary = []
    for script in CONVERSATIONS:
        rows = run_conversation(user, script, args.turns, recorder, server)
        print_table(script["language"], rows, args.every)
        summary.append((script["language"], rows))
    if args.json:
        print(json.dumps(json_result(args, summary), ensure_ascii=False))
    if server is not None:
        server.stop()


def json_result(args: argparse.Namespace, conversations: list[tuple[str, list[TurnRow]]]) -> dict:
    """The common result shape of ``bench/report.py``: the last turn of each conversation against the goals."""
    rows, checks = [], []
    for language, turns in conversations:
        last = turns[-1]
        used, full = sum(r.used for r in turns), sum(r.full for r in turns)
        rows.append(
            {"conversation": f"{language}, {args.answers} answers", f"turn {last.turn} with memory": last.used}
            | {f"turn {last.turn} full history": last.full, "net saving": f"{last.net():.1%}"}
            | {f"turns 1–{last.turn} saved": f"{1 - (used + last.spent) / full:.1%}"}
            | {"facts kept": f"{last.facts_kept}/{last.facts_total}"}
        )
        checks.append({"figure": f"net saving at turn {last.turn}, {language}", "value": round(last.net(), 3)})
        checks[-1]["goal"] = ">= 0.73"
        share = last.facts_kept / last.facts_total if last.facts_total else 1.0
        checks.append({"figure": f"planted facts kept, {language}", "value": round(share, 3), "goal": ">= 0.9"})
    return {"config": vars(args), "rows": rows, "checks": checks}


def start_llm_server():
    from tests.llmserver import LLMTestServer

    server = LLMTestServer(port=0).start()
    os.environ["LLM_BASE_URL"] = server.base_url
    os.environ["CHAT_MODEL_BACKEND"] = "protostar.llm.openai.OpenAIChatModel"
    os.environ.setdefault("SUMMARIZER_BACKEND", "summaries.summarizers.ExtractiveSummarizer")
    return server


def typical_answer(question: str, turn: int, korean: bool) -> str:
    """A grounded answer of ordinary LLM length: the relevant policy restated, with the usual explanation."""
    section, text = CHUNKS[(turn % 6) + (6 if korean else 0)]
    if korean:
        return (
            f"질문하신 내용은 「{section}」 규정에 나와 있습니다 [S1]. {text} [S1] 이 규정은 정규직 직원 모두에게 "
            "적용되며, 예외가 필요하면 담당 관리자와 먼저 상의한 뒤 인사 포털에서 신청하시면 됩니다. 팀 단위로 "
            "적용할 때는 팀원들에게 같은 기준을 안내하고, 승인 기록을 남겨 두시는 것이 좋습니다. 더 자세한 절차나 "
            "양식이 필요하시면 인사팀에 문의하시거나 관련 문서의 해당 조항을 확인해 주세요 [S1]."
        )
    return (
        f"The answer is in the {section} policy [S1]. {text} [S1] This applies to all full-time employees; if your "
        "team needs an exception, discuss it with the responsible manager first and then file the request in the "
        "HR portal so that the approval is recorded. When you apply it across a team, it helps to share the same "
        "rule with everyone and to keep the approvals in one place. For the exact procedure and forms, check the "
        "relevant section of the handbook or ask HR [S1]."
    )


if __name__ == "__main__":
    main()
