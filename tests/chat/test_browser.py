"""The chat page end to end in headless Chromium against a real daphne, the real chat worker and the scripted LLM.

Sign in through the form, ask, watch tokens arrive, read sources, stop, survive a server restart, and render hostile
model output inert.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from chat.models import Conversation, Message
from tests.conftest import wait_until as wait_until_true
from tests.live import Daphne

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = Path("/tmp/protostar-chat.png")
PASSWORD = "pw-browser-123456"
XSS_REPLY = (
    '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> [click](javascript:window.__pwned=3)'
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        CHROMIUM is None or not os.path.exists(CHROMEDRIVER),
        reason="chromium and chromium-driver are not installed (run scripts/install-browser.sh as root)",
    ),
]


@pytest.fixture(scope="session")
def live_server_daphne(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Daphne]:
    with django_db_blocker.unblock():
        server = Daphne(tmp_path_factory.mktemp("daphne") / "daphne.log").start()
    yield server
    server.stop()


DOWNLOADS = Path(tempfile.gettempdir()) / "protostar-downloads"


def make_driver(language: str = "en-US", download_dir: Path = DOWNLOADS):
    """Headless Chromium sending ``Accept-Language: language`` and saving downloads into ``download_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="protostar-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {
            "intl.accept_languages": language,
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
        },
    )
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,860",
        f"--lang={language}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    browser.profile_dir = profile
    return browser


def quit_driver(browser) -> None:
    browser.quit()
    shutil.rmtree(browser.profile_dir, ignore_errors=True)


@pytest.fixture
def driver() -> Iterator:
    # English: the assertions below read the English interface (the Korean one has its own tests).
    browser = make_driver("en-US")
    yield browser
    quit_driver(browser)


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("browser-user", password=PASSWORD)


@pytest.fixture
def chat_page(driver, live_server_daphne, user, knowledge_base, chat_worker):
    """A signed-in chat page, reached through the real login form."""
    return sign_in(driver, live_server_daphne, user)


def sign_in(driver, server, user):
    from selenium.webdriver.common.by import By

    driver.get(f"{server.url}/")
    assert "/accounts/login/" in driver.current_url  # anonymous users are sent to sign in
    driver.find_element(By.ID, "id_username").send_keys(user.username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login-form button[type=submit]").click()
    wait_until(lambda: driver.find_elements(By.ID, "prompt"), timeout=15, message="the chat page")
    wait_until(lambda: js(driver, "return document.getElementById('connection-state').hidden"), timeout=10)
    return driver


def wait_until(predicate, **kwargs):
    """``tests.conftest.wait_until`` for predicates that read the page: an element the page re-rendered between being
    found and being read (stale) counts as "not yet", not as a failure."""
    from selenium.common.exceptions import StaleElementReferenceException

    def reading_the_page():
        try:
            return predicate()
        except StaleElementReferenceException:
            return None

    return wait_until_true(reading_the_page, **kwargs)


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def ask(driver, question: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    prompt = driver.find_element(By.ID, "prompt")
    wait_until(prompt.is_enabled, timeout=10, message="the composer")
    prompt.send_keys(question)
    prompt.send_keys(Keys.ENTER)


def last_answer(driver):
    from selenium.webdriver.common.by import By

    answers = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "article.msg-assistant"), timeout=15)
    return answers[-1]


LAST_ANSWER_TEXT = """
const answers = document.querySelectorAll("article.msg-assistant .answer");
return answers.length ? answers[answers.length - 1].innerText : "";
"""


def answer_text(driver) -> str:
    return js(driver, LAST_ANSWER_TEXT)


def assert_no_console_errors(driver) -> None:
    """Script errors and Content-Security-Policy violations both land in the console as SEVERE entries."""
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def wait_for_status(driver, status: str, timeout: float = 30) -> None:
    wait_until(lambda: last_answer(driver).get_attribute("data-status") == status, timeout=timeout, message=status)


def test_answer_streams_in_with_sources_and_survives_a_reload(chat_page, llm, knowledge_base):
    from selenium.webdriver.common.by import By

    driver = chat_page
    reply = "**연차**는 매월 1.5일씩 발생하며 연간 최대 18일까지 적립됩니다 [S1]. 자세한 내용은 규칙을 보세요 [S1, S2]."
    llm.script(reply=reply, tokens_per_second=8)
    ask(driver, "연간 유급휴가는 며칠인가요?")

    answer = last_answer(driver)
    lengths: list[int] = []
    deadline = time.monotonic() + 30
    while answer.get_attribute("data-status") != "complete" and time.monotonic() < deadline:
        lengths.append(len(answer_text(driver)))
        time.sleep(0.1)
    wait_for_status(driver, "complete")
    growth = sorted(set(lengths) - {0})
    assert len(growth) >= 4, f"the answer did not grow token by token: {lengths}"
    assert lengths == sorted(lengths)

    text = answer_text(driver)
    assert "연차는 매월 1.5일씩" in text and "[S1]" not in text  # markdown rendered, labels became badges
    assert answer.find_element(By.CSS_SELECTOR, ".answer strong").text == "연차"
    assert answer.find_element(By.CSS_SELECTOR, ".answer").get_attribute("lang") == "ko"
    badges = answer.find_elements(By.CSS_SELECTOR, ".answer a.cite")
    assert [badge.text for badge in badges] == ["S1", "S1", "S2"]
    sources = answer.find_elements(By.CSS_SELECTOR, ".sources-list a.source-link")
    assert sources and all("Employee Handbook" in link.text for link in sources)
    first = sources[0]
    page = Message.objects.get(pk=answer.get_attribute("data-message-id")).sources[0]["page"]
    assert f"p. {page}" in first.text
    assert_no_console_errors(driver)
    source_href = first.get_attribute("href")
    assert source_href.endswith(f"/documents/{knowledge_base.pk}/?page={page}#page-{page}")
    assert badges[0].get_attribute("href").endswith(f"#src-{answer.get_attribute('data-message-id')}-S1")

    # The new conversation is in the sidebar, the URL names it, and a reload shows the same history.
    conversation_url = driver.current_url
    assert "/c/" in conversation_url
    sidebar = driver.find_element(By.CSS_SELECTOR, "#conversation-list a.active")
    assert sidebar.text == "연간 유급휴가는 며칠인가요?"
    driver.save_screenshot(str(SCREENSHOT))
    driver.get(conversation_url)
    wait_for_status(driver, "complete", timeout=10)
    assert answer_text(driver) == text
    assert driver.find_element(By.CSS_SELECTOR, "article.msg-user .bubble").get_attribute("lang") == "ko"

    # The source link opens the document page at the cited page.
    driver.get(source_href)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Employee Handbook"
    assert driver.find_element(By.ID, f"page-{page}")


def test_stop_ends_a_slow_answer_as_cancelled(chat_page, llm):
    from selenium.webdriver.common.by import By

    driver = chat_page
    llm.script(reply=" ".join(f"word{i}" for i in range(300)), tokens_per_second=10)
    ask(driver, "Tell me everything about leave.")
    wait_until(lambda: len(answer_text(driver).split()) >= 5, timeout=30, message="the answer to start")
    stop = driver.find_element(By.ID, "stop")
    assert stop.is_displayed() and not driver.find_element(By.ID, "send").is_enabled()
    stop.click()
    wait_for_status(driver, "cancelled", timeout=10)
    shown = answer_text(driver)
    time.sleep(1.0)
    assert answer_text(driver) == shown  # nothing arrives after the stop
    assert 5 <= len(shown.split()) < 300
    assert "Stopped" in last_answer(driver).find_element(By.CSS_SELECTOR, ".answer-status").text
    assert not driver.find_element(By.ID, "stop").is_displayed()
    message = Message.objects.get(pk=last_answer(driver).get_attribute("data-message-id"))
    assert message.status == Message.Status.CANCELLED

    # Switching views without a reload: a new conversation, then back to this one through the sidebar.
    driver.find_element(By.ID, "new-conversation").click()
    wait_until(lambda: driver.find_element(By.ID, "empty-state").is_displayed(), timeout=5, message="empty state")
    assert not driver.find_elements(By.CSS_SELECTOR, "article.msg") and "/c/" not in driver.current_url
    driver.find_element(By.CSS_SELECTOR, f'#conversation-list a[data-conversation="{message.conversation_id}"]').click()
    wait_for_status(driver, "cancelled", timeout=10)
    assert answer_text(driver).split() == message.content.split()
    assert driver.current_url.endswith(f"/c/{message.conversation_id}/")


def test_hostile_markup_in_an_answer_renders_inert(chat_page, llm):
    from selenium.webdriver.common.by import By

    driver = chat_page
    llm.script(reply=XSS_REPLY)
    ask(driver, "Show me something dangerous.")
    wait_for_status(driver, "complete")
    answer = last_answer(driver)
    for link in answer.find_elements(By.CSS_SELECTOR, "a"):
        if link.text == "click":
            link.click()
    time.sleep(0.3)
    assert js(driver, "return window.__pwned") is None
    assert not answer.find_elements(By.CSS_SELECTOR, "script, img, iframe, [onerror]")
    hrefs = [a.get_attribute("href") or "" for a in answer.find_elements(By.CSS_SELECTOR, "a")]
    assert not any(href.lower().startswith("javascript:") for href in hrefs)
    assert "<script>" in answer_text(driver)  # shown as text, not run
    assert_no_console_errors(driver)


def test_answer_completes_without_duplicates_after_the_server_restarts(chat_page, llm, live_server_daphne):
    from selenium.webdriver.common.by import By

    driver = chat_page
    words = [f"w{i:02d}" for i in range(60)]
    llm.script(reply=" ".join(words), tokens_per_second=12)
    ask(driver, "Count to sixty slowly.")
    wait_until(lambda: len(answer_text(driver).split()) >= 8, timeout=30, message="the answer to start")

    live_server_daphne.stop()  # every socket drops; the answer keeps running in the worker
    indicator = driver.find_element(By.ID, "connection-state")
    wait_until(indicator.is_displayed, timeout=10, message="the reconnecting state")
    assert "Reconnecting" in indicator.text
    live_server_daphne.start()

    wait_for_status(driver, "complete", timeout=40)
    assert answer_text(driver).split() == words
    wait_until(lambda: not indicator.is_displayed(), timeout=10, message="the reconnecting state to clear")


def test_shift_enter_adds_a_line_and_model_errors_show_inline(chat_page, llm):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = chat_page
    llm.script(fail="500")
    prompt = driver.find_element(By.ID, "prompt")
    prompt.send_keys("first line", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "second line")
    assert prompt.get_attribute("value") == "first line\nsecond line"  # Shift+Enter did not send
    assert driver.find_element(By.ID, "char-count").text.startswith("22 /")
    prompt.send_keys(Keys.ENTER)
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "article.msg-user"), timeout=10)
    assert driver.find_element(By.CSS_SELECTOR, "article.msg-user .bubble").text == "first line\nsecond line"
    wait_for_status(driver, "failed")
    notice = last_answer(driver).find_element(By.CSS_SELECTOR, ".notice-error")
    message = Message.objects.get(pk=last_answer(driver).get_attribute("data-message-id"))
    assert message.status == Message.Status.FAILED and message.error
    assert notice.text == message.error  # the readable detail, not a code
    assert driver.find_element(By.ID, "prompt").is_enabled() and not driver.find_element(By.ID, "stop").is_displayed()


def test_a_conversation_is_renamed_and_deleted_from_the_page(chat_page, llm, user):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = chat_page
    assert not driver.find_element(By.ID, "conversation-actions").is_displayed()  # nothing to rename yet
    llm.script(reply="Eighteen days a year [S1].", tokens_per_second=200)
    ask(driver, "How many leave days?")
    wait_for_status(driver, "complete")
    conversation = Conversation.objects.get(owner=user)

    driver.find_element(By.ID, "rename-conversation").click()
    field = driver.find_element(By.ID, "rename-input")
    assert field.get_attribute("value") == "How many leave days?"
    field.clear()
    field.send_keys("휴가 일수 정리", Keys.ENTER)
    wait_until(lambda: driver.find_element(By.ID, "conversation-title").text == "휴가 일수 정리", timeout=10)
    assert driver.find_element(By.CSS_SELECTOR, "#conversation-list a.active").text == "휴가 일수 정리"
    conversation.refresh_from_db()
    assert conversation.title == "휴가 일수 정리"

    # Cancelling the confirmation keeps everything; accepting it deletes and returns to a new conversation.
    driver.find_element(By.ID, "delete-conversation").click()
    driver.switch_to.alert.dismiss()
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    driver.find_element(By.ID, "delete-conversation").click()
    driver.switch_to.alert.accept()
    wait_until(lambda: driver.find_element(By.ID, "conversation-title").text == "New conversation", timeout=10)
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not driver.find_elements(By.CSS_SELECTOR, f'#conversation-list a[data-conversation="{conversation.pk}"]')
    assert driver.find_element(By.ID, "no-conversations").is_displayed()
    assert not driver.find_element(By.ID, "conversation-actions").is_displayed()
    assert urlsplit(driver.current_url).path == reverse("chat:home")
    assert_no_console_errors(driver)
