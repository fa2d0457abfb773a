"""End to end in a real headless Chromium: log in with a code, filter, resolve, see the rates.

Debian's ``chromium`` is driven by Playwright's Python package through
``executable_path`` (no browser download). Without a browser the tests skip, unless
``WEIZHILI_REQUIRE_BROWSER=1`` (CI) turns that into a failure. Screenshots go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.channels.simulator import SimulatorChannel
from bot.config import Config
from models.tables import Petition
from tests.conftest import GM_1

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PHONE = {"width": 412, "height": 860}


def chromium_path() -> str | None:
    path = os.environ.get("WEIZHILI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if Path(path).is_file() else None


def missing_browser() -> str:
    """Why the browser tests cannot run here, or "" when they can."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    if chromium_path() is None:
        return "no Chromium at /usr/bin/chromium (apt-get install chromium)"
    return ""


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    reason = missing_browser()
    if reason:
        if os.environ.get("WEIZHILI_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser required (WEIZHILI_REQUIRE_BROWSER=1): {reason}")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_path(),
                                                    args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def live_app(config: Config) -> AsyncIterator[App]:
    """The real bot: simulator channel, web on 127.0.0.1 port 0, a temporary database."""
    app = App(config)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def post(app: App, room: str | None, sender: str, name: str, text: str) -> None:
    simulator = app.channel
    assert isinstance(simulator, SimulatorChannel)
    topic = next((g.room_topic for g in app.config.grids if g.room_id == room), "")
    await simulator.post(room, sender, name, text, topic)


async def login_code(app: App, member_id: str) -> str:
    """Ask for a code in a private chat and read the bot's answer in the simulator."""
    await post(app, None, member_id, "赵网格员", "/登录")
    assert app.services is not None
    await app.services.outbox.send_due()
    simulator = app.channel
    assert isinstance(simulator, SimulatorChannel)
    answers = [e["text"] for e in simulator.history(member_id) if e.get("bot")]
    match = re.search(r"登录码：(\d{8})", answers[-1] if answers else "")
    assert match, answers
    return match.group(1)


async def kpi(page: Any, key: str) -> str:
    return (await page.locator(f'[data-rate="{key}"] b').inner_text()).strip()


async def test_staff_flow_in_chromium(live_app: App, browser: Any) -> None:
    app = live_app
    for text in ("3号楼电梯坏了，好几天了没人修", "楼道里的灯不亮了，晚上很黑",
                 "小区门口垃圾堆满了没人清理 <script>alert('xss')</script>"):
        await post(app, "grid-01", "wxid_resident_001", "张阿姨", text)
    await post(app, "grid-02", "wxid_resident_002", "李大爷", "2号楼门口下水道堵了")
    code = await login_code(app, GM_1)
    base = f"http://127.0.0.1:{app.web_port}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    context = await browser.new_context(viewport=PHONE, device_scale_factor=2,
                                        locale="zh-CN")
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    # not logged in: 401 with the login form; log in with the one-time code
    response = await page.goto(f"{base}/dashboard")
    assert response is not None and response.status == 401
    await page.locator('input[name="code"]').fill(code)
    await page.locator('form:has(input[name="code"]) button').click()
    await page.wait_for_url(f"{base}/dashboard")
    assert await page.locator("h1").inner_text() == "诉求看板"
    assert await page.locator("text=群聊模拟器").count() == 1  # the simulator is active

    # the statistics before anything is done
    await page.goto(f"{base}/dashboard/stats")
    same_day_before = await kpi(page, "same_day_rate")
    on_time_before = await kpi(page, "on_time_response_rate")

    # the board: a 网格员 sees only grid 1; filter by category
    await page.goto(f"{base}/dashboard")
    board = page.locator("table.board tbody tr")
    assert await board.count() == 3
    assert await page.locator("text=下水道").count() == 0
    await page.locator('select[name="category"]').select_option("维修")
    await page.locator("form.filters button").click()
    await page.wait_for_url(re.compile(r".*category=.*"))
    assert await board.count() == 2
    assert await page.locator("text=垃圾").count() == 0
    await page.screenshot(path=str(SCREENSHOTS / "board.png"), full_page=True)

    # markup in a resident's words is shown as text and never runs
    await page.goto(f"{base}/dashboard/petitions/3")
    shown = await page.locator("#petition-text").inner_text()
    assert "<script>alert('xss')</script>" in shown
    assert await page.locator("main script").count() == 0
    assert dialogs == []

    # resolve petition 1 from its detail page, with a note
    await page.goto(f"{base}/dashboard/petitions/1")
    form = page.locator('form[data-action="resolve"]')
    await form.locator("textarea").fill("已联系维修师傅，电梯恢复运行")
    await form.locator("button").click()
    await page.wait_for_url(f"{base}/dashboard/petitions/1?done=resolve")
    assert await page.locator(".flash").inner_text() == "已办结。"
    assert "已办结" in await page.locator("dl.facts").inner_text()
    assert "电梯恢复运行" in await page.locator("ol.history").inner_text()
    await page.screenshot(path=str(SCREENSHOTS / "detail.png"), full_page=True)

    # the rates moved
    await page.goto(f"{base}/dashboard/stats?group_by=category")
    same_day_after = await kpi(page, "same_day_rate")
    on_time_after = await kpi(page, "on_time_response_rate")
    assert (same_day_before, on_time_before) == ("—", "—")
    assert (same_day_after, on_time_after) == ("100%", "100%")
    assert await page.locator("svg.chart").count() == 2
    await page.screenshot(path=str(SCREENSHOTS / "statistics.png"), full_page=True)
    await context.close()

    assert app.services is not None
    async with app.services.db.session() as session:
        row = await session.get(Petition, 1)
    assert row is not None and row.status == "resolved"
    assert dialogs == []


async def test_desktop_board_and_foreign_post_refused(live_app: App, browser: Any) -> None:
    app = live_app
    await post(app, "grid-01", "wxid_resident_001", "张阿姨", "3号楼电梯坏了，好几天了没人修")
    code = await login_code(app, GM_1)
    base = f"http://127.0.0.1:{app.web_port}"
    context = await browser.new_context(viewport={"width": 1280, "height": 800},
                                        locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{base}/dashboard/login")
    await page.locator('input[name="code"]').fill(code)
    await page.locator('form:has(input[name="code"]) button').click()
    await page.wait_for_url(f"{base}/dashboard")

    # a request the page did not make: the session cookie alone is not enough (B32)
    result = await page.evaluate(
        """async () => {
            const r = await fetch('/api/petitions/1/resolve', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: '{}'});
            return r.status;
        }""")
    assert result == 403
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "board-desktop.png"), full_page=True)
    await context.close()

    assert app.services is not None
    async with app.services.db.session() as session:
        row = await session.get(Petition, 1)
    assert row is not None and row.status == "reported"
