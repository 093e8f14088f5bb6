"""The API's OpenAPI documents against a live daphne: they validate, a bounded property-based run of schemathesis
finds no server error and no response that breaks them, and the docs page loads nothing from outside."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from chat.models import Conversation
from knowledge.models import Document
from tests.conftest import ROOT, wait_until
from tests.live import api_client, api_key

pytestmark = pytest.mark.django_db(transaction=True)
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Bounds of the schemathesis run: a few examples per operation and a time budget, so it fits in `make test`.
FUZZ_EXAMPLES = 4
FUZZ_SECONDS = 30


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("spec-staff", password="pw-123456")


def test_both_openapi_documents_are_valid_openapi_3_1(api_server, staff):
    with api_client(api_server, api_key(staff, "read")) as client:
        documents = [client.get(path).json() for path in ("/api/v1/openapi.json", "/v1/openapi.json")]
    with api_client(api_server) as anonymous:
        refused = anonymous.get("/api/v1/openapi.json")
    for document in documents:
        validate(document)
        assert document["openapi"].startswith("3.1")
    api, compatible = documents
    assert {"/api/v1/documents", "/api/v1/search", "/api/v1/ask", "/api/v1/messages/{message_id}/events"} <= set(
        api["paths"]
    )
    events = api["paths"]["/api/v1/messages/{message_id}/events"]["get"]["responses"]["200"]["content"]
    assert events["text/event-stream"]["schema"]["$ref"] == "#/components/schemas/AnswerEventStreamItem"
    assert {"SourcesEvent", "TokenEvent", "EndEvent", "ErrorEvent", "ResetEvent"} <= set(api["components"]["schemas"])
    assert set(compatible["paths"]) == {"/v1/models", "/v1/chat/completions"}
    assert refused.status_code == 401


def _quiesce() -> None:
    """Leave no job of the run behind: its rows go with the test, and a worker writing then would deadlock the
    flush. Queued jobs are dropped; running ones end by themselves (their rows are gone)."""
    from rq.registry import StartedJobRegistry

    from chat.services import conversation_delete
    from knowledge.services import document_delete
    from protostar import queues

    for name in ("chat", "knowledge"):
        queues.queue(name).empty()
    for conversation in Conversation.objects.all():
        conversation_delete(conversation=conversation)
    for document in Document.objects.all():
        document_delete(document=document)

    def idle() -> bool:
        return all(
            StartedJobRegistry(name, connection=queues.connection(name)).count == 0 for name in ("chat", "knowledge")
        )

    wait_until(idle, timeout=60, interval=0.2, message="the run's jobs to end")


def _schemathesis(server, spec_path: Path, key: str, *selection: str, seconds: int) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        str(spec_path),
        "--url",
        server.url,
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--max-time",
        str(seconds),
        "--phases",
        "examples,fuzzing",
        "--request-timeout",
        "30",
        "--seed",
        "18",
        "--workers",
        "1",
        "--no-color",
        *selection,
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    return run.returncode, run.stdout + run.stderr


def test_schemathesis_finds_no_server_error_and_no_response_breaking_the_schema(
    api_server, staff, tmp_path, chat_worker
):
    # The session's chat worker (answering from the test LLM server) finishes the fuzzed asks, so their event
    # streams end.
    key = api_key(staff, "read", "ask", "manage")
    with api_client(api_server, key) as client:
        spec = client.get("/api/v1/openapi.json").json()
    spec_path = tmp_path / "openapi.json"
    spec_path.write_text(json.dumps(spec))
    upload = "knowledge_api_document_upload"
    try:
        runs = [
            _schemathesis(api_server, spec_path, key, "--exclude-operation-id", upload, seconds=FUZZ_SECONDS),
            # Uploads with valid multipart bodies only: daphne's HTTP layer answers a malformed multipart body with
            # a bare 400 before the request reaches Django (nothing of ours to shape).
            _schemathesis(
                api_server, spec_path, key, "--include-operation-id", upload, "--mode", "positive", seconds=15
            ),
        ]
    finally:
        _quiesce()
    for returncode, output in runs:
        (tmp_path / "schemathesis.log").open("a").write(output)
        assert returncode == 0, output[-20000:]
        assert "passed" in output.lower()


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None or not os.path.exists(CHROMEDRIVER),
    reason="chromium and chromium-driver are not installed (run scripts/install-browser.sh as root)",
)
def test_the_docs_page_renders_from_our_own_files_only(api_server, staff, client):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    client.force_login(staff)
    profile = tempfile.mkdtemp(prefix="protostar-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(f"{api_server.url}/accounts/login/")
        browser.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value, "path": "/"})
        browser.get(f"{api_server.url}/")
        browser.find_element(By.ID, "api-docs-link").click()
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".opblock"), timeout=30, message="the operations")
        title = browser.find_element(By.CSS_SELECTOR, ".info .title").text
        operations = [element.text for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
        requested = [
            json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
        ]
        console = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert "Protostar API" in title
    assert any("/api/v1/ask" in operation for operation in operations)
    assert requested and any(url.endswith("swagger-ui-bundle.js") for url in requested)
    # Chromium's own pages (chrome://) are not the page's; anything fetched over the network must be ours.
    network = [url for url in requested if url.split(":", 1)[0] in ("http", "https", "ws", "wss")]
    outside = [url for url in network if not url.startswith(api_server.url)]
    assert outside == [], outside
    assert console == [], console
