"""The admin's usage page in headless Chromium against a real daphne: signed in through the admin's login form, the
chart and the per-user bars render (no script, no CDN) and read at a glance; the screenshot is kept for review."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.chat.test_browser import CHROMEDRIVER, CHROMIUM, Daphne, driver, js, wait_until  # noqa: F401 (fixtures)
from usage.models import UsageDay

SCREENSHOT = Path("/tmp/protostar-usage.png")
PASSWORD = "pw-usage-admin-123456"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        CHROMIUM is None or not os.path.exists(CHROMEDRIVER),
        reason="chromium and chromium-driver are not installed (run scripts/install-browser.sh as root)",
    ),
]


@pytest.fixture
def daphne_server(django_db_blocker, tmp_path):
    with django_db_blocker.unblock():
        server = Daphne(tmp_path / "daphne.log").start()
    yield server
    server.stop()


def test_usage_page_shows_the_chart_and_per_user_bars_in_a_browser(driver, daphne_server, django_user_model):  # noqa: F811
    from selenium.webdriver.common.by import By

    django_user_model.objects.create_superuser("usage-admin", "admin@example.com", PASSWORD)
    today = timezone.localdate()
    people = {"김민지": 1.0, "john": 0.4, "이서연": 0.15}
    for name, share in people.items():
        user = django_user_model.objects.create_user(name, password="pw-123456")
        for offset in range(14):
            scale = share * (1 + (offset % 5))
            UsageDay.objects.create(
                user=user,
                day=today - timedelta(days=offset),
                answers=int(10 * scale) + 1,
                prompt_tokens=int(8000 * scale),
                completion_tokens=int(900 * scale),
                summary_prompt_tokens=int(700 * scale),
                summary_completion_tokens=int(120 * scale),
            )

    driver.get(f"{daphne_server.url}/admin/usage/usageday/report/")
    assert "/admin/login/" in driver.current_url
    driver.find_element(By.ID, "id_username").send_keys("usage-admin")
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_until(lambda: driver.find_elements(By.ID, "usage-chart"), timeout=15, message="the usage page")

    bars = driver.find_elements(By.CSS_SELECTOR, "#usage-chart rect.prompt")
    assert len(bars) == 14  # one per day with usage in the default 30 days
    heights = [float(bar.get_attribute("height")) for bar in bars]
    assert max(heights) > 3 * min(heights) > 0  # busy and quiet days are told apart at a glance
    chart = driver.find_element(By.ID, "usage-chart")
    assert chart.size["width"] > 600 and chart.size["height"] > 100  # drawn, not collapsed
    rows = driver.find_elements(By.CSS_SELECTOR, "#usage-users tbody tr")
    assert [row.find_element(By.TAG_NAME, "a").text for row in rows] == ["김민지", "john", "이서연"]
    widths = [row.find_element(By.CSS_SELECTOR, ".usage-bar b").size["width"] for row in rows]
    assert widths[0] > widths[1] > widths[2] > 0
    assert driver.find_element(By.ID, "usage-csv").get_attribute("href").endswith("report.csv")
    driver.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
    # The admin pages link no favicon, so the browser's own request for one is a 404 and not the page's fault.
    logged = driver.get_log("browser")
    errors = [e["message"] for e in logged if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
    assert not errors, errors
