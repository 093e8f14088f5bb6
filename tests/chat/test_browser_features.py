"""The chat page's everyday features in headless Chromium against real daphne, the chat worker and the scripted LLM:
Korean and English interface and the remembered switcher, feedback found in the admin, regenerate and edit, copy,
Markdown export, a phone-width layout, keyboard-only use and an automated accessibility check (axe-core, served from
our static files)."""

# The fixtures shared with test_browser.py are imported by name, which pytest needs and ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from chat.models import Conversation, Message
from feedback.models import AnswerFeedback
from tests.chat.test_browser import (  # noqa: F401  (fixtures)
    answer_text,
    ask,
    assert_no_console_errors,
    chat_page,
    driver,
    js,
    last_answer,
    live_server_daphne,
    make_driver,
    quit_driver,
    sign_in,
    user,
    wait_for_status,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NARROW_SCREENSHOT = Path("/tmp/protostar-chat-390.png")
AXE_RUN = """
const done = arguments[arguments.length - 1];
const script = document.createElement("script");
script.src = "/static/vendor/axe.min.js";
script.onload = () => axe.run(document, { resultTypes: ["violations"] })
  .then((results) => done(JSON.stringify(results.violations.map((v) => ({
    id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) })))))
  .catch((error) => done(JSON.stringify([{ id: "axe-error", impact: "critical", nodes: [String(error)] }])));
script.onerror = () => done(JSON.stringify([{ id: "axe-missing", impact: "critical", nodes: [] }]));
document.head.append(script);
"""


def serious_violations(driver) -> list[dict]:
    driver.set_script_timeout(60)
    violations = json.loads(driver.execute_async_script(AXE_RUN))
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def by(css: str):
    from selenium.webdriver.common.by import By

    return By.CSS_SELECTOR, css


@pytest.fixture
def korean_driver():
    browser = make_driver("ko-KR,ko")
    yield browser
    quit_driver(browser)


def test_a_korean_browser_gets_korean_pages_and_the_switch_to_english_is_remembered(
    korean_driver, live_server_daphne, user, knowledge_base, chat_worker, llm
):
    from selenium.webdriver.support.ui import Select

    driver = korean_driver
    driver.get(f"{live_server_daphne.url}/accounts/login/")
    assert js(driver, "return document.documentElement.lang") == "ko"
    assert driver.find_element(*by("form.login-form button[type=submit]")).text == "로그인"
    sign_in(driver, live_server_daphne, user)
    assert driver.find_element(*by("#conversation-title")).text == "새 대화"
    assert driver.find_element(*by("#prompt")).get_attribute("placeholder").startswith("질문을 입력하세요")
    llm.script(reply="연간 18일입니다 [S1].", tokens_per_second=200)
    ask(driver, "연차는 며칠인가요?")
    wait_for_status(driver, "complete")
    answer = last_answer(driver)
    assert answer.find_element(*by(".sources-heading")).text == "출처"
    assert answer.find_element(*by(".regenerate-answer")).text == "다시 생성"
    assert "쪽" in answer.find_element(*by(".source-page")).text
    assert not serious_violations(driver), "the Korean page has serious accessibility violations"
    # Korean labels are longer: the phone-wide page still fits.
    driver.set_window_size(390, 844)
    wait_until(lambda: js(driver, "return window.innerWidth") <= 390, timeout=5, message="the narrow window")
    assert js(driver, "return document.documentElement.scrollWidth") <= 390
    driver.save_screenshot(str(NARROW_SCREENSHOT.with_name("protostar-chat-390-ko.png")))
    driver.set_window_size(1280, 860)

    Select(driver.find_element(*by("#language-select"))).select_by_value("en")
    driver.find_element(*by("#language-apply")).click()
    wait_until(lambda: js(driver, "return document.documentElement.lang") == "en", timeout=10, message="English")
    assert last_answer(driver).find_element(*by(".sources-heading")).text.lower() == "sources"
    assert driver.find_element(*by("#sign-out")).text == "Sign out"
    driver.get(f"{live_server_daphne.url}/")  # remembered: the cookie wins over the browser's Korean
    assert driver.find_element(*by("#conversation-title")).text == "New conversation"
    assert driver.find_element(*by("#prompt")).get_attribute("placeholder").startswith("Ask a question")
    assert_no_console_errors(driver)


def test_an_english_browser_gets_the_english_page(chat_page):
    driver = chat_page
    assert js(driver, "return document.documentElement.lang") == "en"
    assert driver.find_element(*by("#conversation-title")).text == "New conversation"
    assert driver.find_element(*by("#send")).text == "Send"


def test_feedback_with_a_reason_is_stored_with_its_sources_and_found_in_the_admin(chat_page, llm, user):
    driver = chat_page
    llm.script(reply="Remote work is allowed three days a week [S1].", tokens_per_second=200)
    ask(driver, "How many remote days?")
    wait_for_status(driver, "complete")
    answer = last_answer(driver)
    answer.find_element(*by(".thumb-down")).click()
    answer.find_element(*by("input[value=wrong_source]")).click()
    answer.find_element(*by(".feedback-comment")).send_keys("The leave page is the right one.")
    answer.find_element(*by(".feedback-send")).click()
    wait_until(lambda: answer.find_element(*by(".feedback-thanks")).text, timeout=10, message="the thanks")
    assert answer.find_element(*by(".thumb-down")).get_attribute("aria-pressed") == "true"

    feedback = AnswerFeedback.objects.get(message_id=answer.get_attribute("data-message-id"))
    assert (feedback.rating, feedback.reason, feedback.comment) == (
        "down",
        "wrong_source",
        "The leave page is the right one.",
    )
    assert feedback.sources and feedback.sources[0]["rank"] == 1 and feedback.retrieval_query == "How many remote days?"

    # The rating survives a reload, and staff find it in the admin filtered by its reason.
    driver.refresh()
    wait_for_status(driver, "complete", timeout=10)
    assert last_answer(driver).find_element(*by(".thumb-down")).get_attribute("aria-pressed") == "true"
    type(user).objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    driver.get(f"{driver.current_url.split('/c/')[0]}/admin/feedback/answerfeedback/?reason__exact=wrong_source")
    rows = driver.find_elements(*by("#result_list tbody tr"))
    assert len(rows) == 1 and "How many remote days?" in rows[0].text


def test_regenerate_keeps_the_previous_answer_browsable_and_edit_asks_again(chat_page, llm):
    driver = chat_page
    llm.script(reply="First attempt [S1].", tokens_per_second=200)
    ask(driver, "How many leave days?")
    wait_for_status(driver, "complete")
    first_id = last_answer(driver).get_attribute("data-message-id")
    llm.script(reply="Second attempt [S1].", tokens_per_second=200)
    last_answer(driver).find_element(*by(".regenerate-answer")).click()

    def second_shown():
        shown = [a for a in driver.find_elements(*by("article.msg-assistant")) if a.is_displayed()]
        return len(shown) == 1 and shown[0].get_attribute("data-message-id") != first_id and shown[0]

    second = wait_until(second_shown, timeout=15, message="the second attempt")
    wait_until(lambda: second.get_attribute("data-status") == "complete", timeout=30, message="the second attempt")
    assert "Second attempt" in second.text and second.find_element(*by(".attempt-label")).text == "Answer 2 of 2"
    second.find_element(*by(".attempt-previous")).click()
    first = driver.find_element(*by(f'article.msg-assistant[data-message-id="{first_id}"]'))
    assert first.is_displayed() and not second.is_displayed() and "First attempt" in first.text
    assert first.find_element(*by(".attempt-label")).text == "Answer 1 of 2"
    assert not first.find_element(*by(".regenerate-answer")).is_displayed()  # only the newest attempt
    first.find_element(*by(".attempt-next")).click()
    assert second.is_displayed()

    # Copy puts the answer's text on the clipboard.
    driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            "origin": driver.current_url.split("/c/")[0],
        },
    )
    second.find_element(*by(".copy-answer")).click()
    wait_until(lambda: second.find_element(*by(".copy-answer")).text == "Copied", timeout=5, message="copied")
    clipboard = driver.execute_async_script("navigator.clipboard.readText().then(arguments[0])")
    assert clipboard == "Second attempt [S1]."

    llm.script(reply="Edited answer [S1].", tokens_per_second=200)
    driver.find_element(*by("article.msg-user .edit-question")).click()
    field = driver.find_element(*by("article.msg-user .edit-input"))
    field.clear()
    field.send_keys("How many remote days?")
    driver.find_element(*by("article.msg-user .edit-submit")).click()
    wait_until(
        lambda: [b.text for b in driver.find_elements(*by("article.msg-user .bubble"))] == ["How many remote days?"],
        timeout=15,
        message="the edited question",
    )
    wait_for_status(driver, "complete")
    assert "Edited answer" in answer_text(driver) and len(driver.find_elements(*by("article.msg-assistant"))) == 1
    conversation = Conversation.objects.get()
    path = Message.objects.filter(conversation=conversation, superseded=False).order_by("id")
    assert [m.content for m in path] == ["How many remote days?", "Edited answer [S1]."]
    driver.refresh()
    wait_for_status(driver, "complete", timeout=10)
    assert [b.text for b in driver.find_elements(*by("article.msg-user .bubble"))] == ["How many remote days?"]
    assert_no_console_errors(driver)


def test_export_downloads_markdown_with_sources_and_search_finds_the_conversation(chat_page, llm):
    driver = chat_page
    downloads = Path(tempfile.mkdtemp(prefix="protostar-export-"))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    llm.script(reply="정규직은 연간 **18일**까지 적립됩니다 [S1].", tokens_per_second=200)
    ask(driver, "연차는 며칠까지 적립되나요?")
    wait_for_status(driver, "complete")
    driver.find_element(*by("#export-conversation")).click()
    exported = wait_until(lambda: [p for p in downloads.glob("*.md")], timeout=15, message="the download")[0]
    text = wait_until(lambda: exported.read_text(encoding="utf-8"), timeout=5, message="the file's content")
    shutil.rmtree(downloads, ignore_errors=True)
    assert exported.name.startswith("연차는")
    assert "## Question\n\n연차는 며칠까지 적립되나요?" in text
    assert "정규직은 연간 **18일**까지 적립됩니다 [S1]." in text
    assert "**Sources**" in text and "- [S1] Employee Handbook" in text

    # Searching one's conversations by a word of the answer finds this one; clicking it opens it.
    conversation = Conversation.objects.get()
    driver.find_element(*by("#new-conversation")).click()
    driver.find_element(*by("#conversation-search")).send_keys("적립되나요")
    result = wait_until(lambda: driver.find_elements(*by("#search-list a")), timeout=10, message="a result")[0]
    assert result.get_attribute("data-conversation") == str(conversation.pk) and "적립되나요" in result.text
    assert not driver.find_element(*by("#conversation-list")).is_displayed()
    result.click()
    wait_for_status(driver, "complete", timeout=10)
    assert driver.current_url.endswith(f"/c/{conversation.pk}/")
    driver.find_element(*by("#conversation-search")).send_keys("없는 단어 xyz")
    status = driver.find_element(*by("#search-status"))
    wait_until(lambda: status.text == "No conversations match.", timeout=10, message="no results")


def test_a_phone_wide_screen_collapses_the_sidebar_and_the_chat_stays_usable(chat_page, llm):
    from selenium.webdriver.common.keys import Keys

    driver = chat_page
    driver.set_window_size(390, 844)
    wait_until(lambda: js(driver, "return window.innerWidth") <= 390, timeout=5, message="the narrow window")
    assert not driver.find_element(*by("#sidebar")).is_displayed()
    toggle = driver.find_element(*by("#menu-toggle"))
    assert toggle.is_displayed()
    llm.script(reply="연간 최대 18일까지 적립됩니다 [S1].", tokens_per_second=200)
    ask(driver, "연차는 며칠인가요?")
    wait_for_status(driver, "complete")
    assert js(driver, "return document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    for css in ("#prompt", "#send", "article.msg-assistant .thumb-up", "#export-conversation"):
        element = driver.find_element(*by(css))
        box = element.rect
        assert element.is_displayed() and box["x"] >= 0 and box["x"] + box["width"] <= 390, css
    driver.save_screenshot(str(NARROW_SCREENSHOT))

    toggle.click()
    sidebar_link = driver.find_element(*by("#conversation-list a"))
    wait_until(sidebar_link.is_displayed, timeout=5, message="the opened sidebar")
    assert toggle.get_attribute("aria-expanded") == "true"
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_until(lambda: not driver.find_element(*by("#sidebar")).is_displayed(), timeout=5, message="closed sidebar")


def test_the_chat_works_from_the_keyboard_alone_and_axe_finds_no_serious_violation(chat_page, llm):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = chat_page
    driver.get(driver.current_url)  # a fresh load: focus starts at the top of the page
    wait_until(lambda: js(driver, "return document.getElementById('connection-state').hidden"), timeout=10)
    # The skip link is the first stop of the tab order, shown when focused, and leads to the question box.
    first = js(driver, "return document.querySelector('a[href], button, input, select, textarea').className")
    assert first == "skip-link"
    js(driver, "document.querySelector('.skip-link').focus()")
    assert js(driver, "return document.querySelector('.skip-link').getBoundingClientRect().top") >= 0
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_until(lambda: js(driver, "return document.activeElement.id") == "prompt", timeout=5, message="the prompt")

    llm.script(reply="Eighteen days a year [S1].", tokens_per_second=200)
    ActionChains(driver).send_keys("How many leave days?", Keys.ENTER).perform()
    wait_for_status(driver, "complete")
    announced = wait_until(lambda: js(driver, "return document.getElementById('announcer').textContent"), timeout=5)
    assert announced.startswith("Answer ready.") and "Eighteen days a year" in announced
    assert js(driver, "return document.getElementById('announcer').getAttribute('aria-live')") == "polite"

    # Backwards from the composer into the answer's tools, then rate it with Enter.
    for _ in range(20):
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        if "thumb-up" in js(driver, "return document.activeElement.className"):
            break
    else:
        pytest.fail("the thumbs-up button is not reachable with the keyboard")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_until(
        lambda: js(driver, "return document.activeElement.getAttribute('aria-pressed')") == "true",
        timeout=10,
        message="the rating",
    )
    assert AnswerFeedback.objects.get().rating == "up"

    violations = serious_violations(driver)
    assert not violations, violations
    assert_no_console_errors(driver)
