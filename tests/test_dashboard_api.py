"""The dashboard and its JSON API over a real server: authentication, rights, validation."""

from __future__ import annotations

import io
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import App
from bot.clock import ManualClock
from bot.config import Config
from bot.web import auth, ops, ops_notices, staff_cli
from models.tables import AuditEntry, Member, Petition, Reminder, StaffRole
from tests.conftest import ADMIN, COMMITTEE, GM_1, PROPERTY, drain
from tests.fakes import RecordingChannel, make_message

GM_2 = "wxid_gm_qian"
RESIDENT = "wxid_resident_001"

GET_ENDPOINTS = [
    "/api/me", "/api/petitions", "/api/petitions/1", "/api/stats", "/api/honor-roll",
    "/api/reminders", "/api/members", "/api/staff", "/api/audit",
    "/api/export/petitions.csv", "/api/export/points.csv",
    "/dashboard", "/dashboard/petitions/1", "/dashboard/stats", "/dashboard/honor",
    "/dashboard/honor/picture.png", "/dashboard/reminders", "/dashboard/members",
    "/dashboard/audit", "/dashboard/export/petitions.csv", "/dashboard/export/points.csv",
    "/dashboard/outbox", "/api/outbox",
]
POST_ENDPOINTS = [
    "/api/logout", "/api/petitions/1/resolve", "/api/reminders/1/cancel", "/api/notices",
    f"/api/staff/{RESIDENT}", "/dashboard/logout", "/dashboard/petitions/1/resolve",
    "/dashboard/reminders/1/cancel", "/dashboard/notices", f"/dashboard/staff/{RESIDENT}",
    "/dashboard/outbox/1/resend", "/api/outbox/1/resend",
]


@pytest.fixture
async def web_app(config: Config, clock: ManualClock,
                  channel: RecordingChannel) -> AsyncIterator[App]:
    bot = App(config, channel=channel, clock=clock, web_enabled=True, scheduler_enabled=False)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


def base_url(app: App) -> str:
    return f"http://127.0.0.1:{app.web_port}"


def client(app: App) -> aiohttp.ClientSession:
    # unsafe=True: keep cookies for an IP-address host
    return aiohttp.ClientSession(base_url(app), cookie_jar=aiohttp.CookieJar(unsafe=True))


async def say(app: App, clock: ManualClock, text: str, *, room: str | None = "grid-01",
              sender: str = RESIDENT, name: str = "张阿姨") -> str:
    assert app.pipeline is not None
    return await app.pipeline.deliver(make_message(text, room=room, sender=sender, name=name,
                                                   at=clock.now()))


async def seed(app: App, clock: ManualClock) -> None:
    """Three petitions in grid 1 (one with markup in it) and one in grid 2."""
    assert await say(app, clock, "3号楼电梯坏了，好几天了没人修") == "petition:维修"
    assert await say(app, clock, "楼道里的灯不亮了，晚上很黑") == "petition:维修"
    assert (await say(app, clock, "小区门口垃圾堆满了没人清理 <script>alert(1)</script>")
            ).startswith("petition:")
    assert (await say(app, clock, "2号楼门口下水道堵了", room="grid-02",
                      sender="wxid_resident_002", name="李大爷")).startswith("petition:")


async def login_code(app: App, clock: ManualClock, channel: RecordingChannel,
                     member_id: str) -> str:
    """Ask the bot for a code by private message, as staff do."""
    assert await say(app, clock, "/登录", room=None, sender=member_id, name=member_id) \
        == "command:登录"
    await drain(app)
    texts = [m.text for m in channel.sent if m.room_id == member_id]
    match = re.search(r"登录码：(\d{8})", texts[-1])
    assert match, texts
    return match.group(1)


async def logged_in(app: App, clock: ManualClock, channel: RecordingChannel,
                    member_id: str) -> tuple[aiohttp.ClientSession, str]:
    """A client with a session for ``member_id`` and that session's CSRF token."""
    session = client(app)
    code = await login_code(app, clock, channel, member_id)
    response = await session.post("/api/login", json={"code": code})
    assert response.status == 200, await response.text()
    me = await (await session.get("/api/me")).json()
    assert me["member_id"] == member_id
    return session, me["csrf"]


async def petition(app: App, number: int) -> Petition:
    assert app.services is not None
    async with app.services.db.session() as session:
        row = await session.get(Petition, number)
    assert row is not None
    return row


# --- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize("path", GET_ENDPOINTS)
async def test_every_page_and_endpoint_answers_401_without_a_session(web_app: App,
                                                                     path: str) -> None:
    async with client(web_app) as session:
        response = await session.get(path, allow_redirects=False)
        assert response.status == 401
        if path.startswith("/api"):
            body = await response.json()
            assert body["error"] == "not_logged_in" and body["message"]
        else:
            assert "登录码" in await response.text()  # the page offers the login form


@pytest.mark.parametrize("path", POST_ENDPOINTS)
async def test_every_state_change_answers_401_without_a_session(web_app: App,
                                                                 path: str) -> None:
    async with client(web_app) as session:
        response = await session.post(path, json={}, allow_redirects=False)
        assert response.status == 401


async def test_login_code_is_sent_only_in_private_and_works_once(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    await say(web_app, clock, "/登录", sender=GM_1, name="赵网格员")
    await drain(web_app)
    assert "请私聊" in channel.texts("grid-01")[-1]
    assert not re.search(r"\d{8}", channel.texts("grid-01")[-1])

    code = await login_code(web_app, clock, channel, GM_1)
    async with client(web_app) as first, client(web_app) as second:
        assert (await first.post("/api/login", json={"code": code})).status == 200
        again = await second.post("/api/login", json={"code": code})
        assert again.status == 401
        assert (await again.json())["error"] == "login_failed"


async def test_login_code_expires(web_app: App, clock: ManualClock,
                                  channel: RecordingChannel) -> None:
    code = await login_code(web_app, clock, channel, GM_1)
    clock.advance(timedelta(minutes=auth.CODE_MINUTES + 1))
    async with client(web_app) as session:
        assert (await session.post("/api/login", json={"code": code})).status == 401


async def test_residents_get_no_login_code(web_app: App, clock: ManualClock,
                                           channel: RecordingChannel) -> None:
    assert await say(web_app, clock, "/登录", room=None) == "command:refused"
    await drain(web_app)
    assert not re.search(r"\d{8}", channel.texts(RESIDENT)[-1])


async def test_password_login_and_rate_limit(web_app: App) -> None:
    assert web_app.services is not None
    assert await staff_cli.set_password(web_app.config, ADMIN, "correct horse 1") == 0
    async with client(web_app) as session:
        good = await session.post("/api/login", json={"account": ADMIN,
                                                      "password": "correct horse 1"})
        assert good.status == 200
        cookie = good.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    async with client(web_app) as session:
        for _ in range(auth.MAX_FAILURES):
            bad = await session.post("/api/login", json={"account": ADMIN, "password": "nope"})
            assert bad.status == 401
        limited = await session.post("/api/login", json={"account": ADMIN,
                                                         "password": "correct horse 1"})
        assert limited.status == 429
        assert (await limited.json())["error"] == "too_many_attempts"
        assert "Retry-After" in limited.headers
    async with web_app.services.db.session() as db:
        refused = list(await db.scalars(select(AuditEntry).where(
            AuditEntry.action == "web:login", AuditEntry.allowed.is_(False))))
    assert len(refused) == auth.MAX_FAILURES


async def test_login_from_a_foreign_page_is_refused(web_app: App, clock: ManualClock,
                                                     channel: RecordingChannel) -> None:
    code = await login_code(web_app, clock, channel, GM_1)
    async with client(web_app) as session:
        foreign = await session.post("/api/login", json={"code": code},
                                     headers={"Origin": "http://evil.example"})
        assert foreign.status == 403
        page = await session.post("/dashboard/login", data={"code": code},
                                  headers={"Origin": "http://evil.example"},
                                  allow_redirects=False)
        assert page.status == 403
        assert not any(c.key == auth.COOKIE for c in session.cookie_jar)
        # the code was not spent by the refused attempts
        assert (await session.post("/api/login", json={"code": code})).status == 200


async def test_tampered_or_foreign_cookie_is_not_a_session(web_app: App, clock: ManualClock,
                                                           channel: RecordingChannel) -> None:
    session, _ = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        value = next(c.value for c in session.cookie_jar if c.key == auth.COOKIE)
    body, mac = value.split(".")
    forged = auth.Auth(b"another secret that is long enough!!").sign({"u": ADMIN, "n": "x",
                                                                     "e": 2**40})
    for cookie in (f"{body}x.{mac}", forged, "garbage"):
        async with client(web_app) as other:
            response = await other.get("/api/me", headers={"Cookie": f"{auth.COOKIE}={cookie}"})
            assert response.status == 401


async def test_a_deactivated_member_loses_the_session_at_once(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    session, _ = await logged_in(web_app, clock, channel, GM_1)
    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        role = await db.get(StaffRole, GM_1)
        assert role is not None
        role.active = False
    async with session:
        assert (await session.get("/api/me")).status == 401


async def test_secret_is_generated_once_with_mode_0600(web_app: App) -> None:
    path = web_app.config.data_dir / auth.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.load_secret(web_app.config) == path.read_text().strip().encode()


async def test_logout_needs_the_token_and_ends_the_session(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        assert (await session.post("/api/logout")).status == 403
        assert (await session.post("/api/logout", headers={"X-CSRF-Token": csrf})).status == 200
        assert (await session.get("/api/me")).status == 401


def _cookie_of(session: aiohttp.ClientSession) -> dict[str, str]:
    return {auth.COOKIE: session.cookie_jar.filter_cookies(
        aiohttp.client.URL("http://127.0.0.1/"))[auth.COOKIE].value}


async def test_a_copied_cookie_dies_with_the_logout(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    """The server refuses the session after logout, not only the browser forgetting it."""
    first, _ = await logged_in(web_app, clock, channel, GM_1)
    other, other_csrf = await logged_in(web_app, clock, channel, GM_1)  # a second device
    async with first, other:
        copied = _cookie_of(first)
        async with aiohttp.ClientSession(base_url(web_app), cookies=copied) as thief:
            assert (await thief.get("/api/me")).status == 200
            response = await other.post("/dashboard/logout", data={"_csrf": other_csrf},
                                        allow_redirects=False)
            assert response.status == 303
            assert (await thief.get("/api/me")).status == 401
            assert (await first.get("/api/me")).status == 401  # every device of the member
        again, _ = await logged_in(web_app, clock, channel, GM_1)  # a new login works
        async with again:
            assert (await again.get("/api/me")).status == 200
    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        ended = list(await db.scalars(select(AuditEntry).where(
            AuditEntry.action == "web:sessions_ended", AuditEntry.target == GM_1)))
    assert [e.detail for e in ended] == ["logout"]


async def test_a_new_password_ends_the_sessions_signed_before_it(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    session, _ = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        assert (await session.get("/api/me")).status == 200
        assert await staff_cli.set_password(web_app.config, GM_1, "a new one 123") == 0
        assert (await session.get("/api/me")).status == 401


# --- B32: CSRF and Origin ---------------------------------------------------------------------


async def test_b32_state_change_needs_token_and_same_origin(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        no_token = await session.post("/api/petitions/1/resolve", json={"note": "好了"})
        assert no_token.status == 403
        assert (await petition(web_app, 1)).status == "reported"

        foreign = await session.post("/api/petitions/1/resolve", json={"note": "好了"},
                                     headers={"X-CSRF-Token": csrf,
                                              "Origin": "http://evil.example"})
        assert foreign.status == 403
        assert (await petition(web_app, 1)).status == "reported"

        wrong = await session.post("/api/petitions/1/resolve", json={"note": "好了"},
                                   headers={"X-CSRF-Token": "0" * 32})
        assert wrong.status == 403

        form = await session.post("/dashboard/petitions/1/resolve", data={"note": "好了"},
                                  allow_redirects=False)
        assert form.status == 403
        assert (await petition(web_app, 1)).status == "reported"

        good = await session.post("/api/petitions/1/resolve", json={"note": "好了"},
                                  headers={"X-CSRF-Token": csrf,
                                           "Origin": base_url(web_app)})
        assert good.status == 200
        assert (await good.json())["status"] == "resolved"
    async with client(web_app) as anonymous:
        assert (await anonymous.post("/api/petitions/2/resolve", json={},
                                     headers={"X-CSRF-Token": csrf})).status == 401
    assert (await petition(web_app, 2)).status == "reported"

    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        refusals = list(await db.scalars(select(AuditEntry).where(
            AuditEntry.actor_id == GM_1, AuditEntry.allowed.is_(False))))
    assert len(refusals) == 4


async def test_form_post_with_token_resolves_and_redirects(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        response = await session.post("/dashboard/petitions/1/resolve",
                                      data={"note": "已修好", "_csrf": csrf},
                                      allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == "/dashboard/petitions/1?done=resolve"
        page = await (await session.get("/dashboard/petitions/1?done=resolve")).text()
    assert "已办结" in page and "已修好" in page


async def test_actions_run_the_chat_commands(web_app: App, clock: ManualClock,
                                             channel: RecordingChannel) -> None:
    """Accept tells the reporter in the group; resolve schedules the follow-up."""
    from models.tables import Followup

    await seed(web_app, clock)
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    private_before = len(channel.texts(GM_1))
    async with session:
        for number, action in ((2, "accept"), (1, "resolve")):
            response = await session.post(f"/api/petitions/{number}/{action}",
                                          json={"note": "师傅下午上门"},
                                          headers={"X-CSRF-Token": csrf})
            assert response.status == 200, await response.text()
    await drain(web_app)
    told = [m for m in channel.sent if m.room_id == "grid-01" and "#2 已受理" in m.text]
    assert told and told[0].mention_ids == (RESIDENT,)
    assert len(channel.texts(GM_1)) == private_before  # no chat echo of a page action
    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        followups = list(await db.scalars(select(Followup).where(Followup.petition_id == 1)))
        audit = list(await db.scalars(select(AuditEntry).where(
            AuditEntry.actor_id == GM_1, AuditEntry.action.startswith("petition:"))))
    assert len(followups) == 1
    assert {a.action for a in audit} == {"petition:accept", "petition:resolve"}


async def test_property_company_sees_only_its_own_matters(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    assert await say(web_app, clock, "邻居家吵架吵得很厉害，能不能来调解一下") \
        == "petition:纠纷"
    session, csrf = await logged_in(web_app, clock, channel, PROPERTY)
    async with session:
        listing = await (await session.get("/api/petitions")).json()
        assert listing["total"] >= 1
        assert {p["party"] for p in listing["petitions"]} == {"物业"}
        assert (await session.get("/api/petitions/5")).status == 403
        refused = await session.post("/api/petitions/5/accept", json={},
                                     headers={"X-CSRF-Token": csrf})
        assert refused.status == 403
    assert (await petition(web_app, 5)).status == "reported"


# --- rights ---------------------------------------------------------------------------------------


async def test_grid_manager_sees_only_their_grid(web_app: App, clock: ManualClock,
                                                 channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        listing = await (await session.get("/api/petitions")).json()
        assert {p["grid_id"] for p in listing["petitions"]} == {"grid-01"}
        assert listing["total"] == 3
        assert (await session.get("/api/petitions/4")).status == 403
        assert (await session.get("/dashboard/petitions/4")).status == 403
        assert (await session.get("/api/petitions?grid=grid-02")).status == 403
        assert (await session.get("/api/stats?grid=grid-02")).status == 403
        assert (await session.get("/api/honor-roll?grid=grid-02")).status == 403
        resolve = await session.post("/api/petitions/4/resolve", json={},
                                     headers={"X-CSRF-Token": csrf})
        assert resolve.status == 403
        csv_text = (await (await session.get("/api/export/petitions.csv")).read()).decode(
            "utf-8-sig")
        assert "下水道" not in csv_text and "电梯" in csv_text
    assert (await petition(web_app, 4)).status == "reported"


async def test_committee_sees_every_grid(web_app: App, clock: ManualClock,
                                        channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, _ = await logged_in(web_app, clock, channel, COMMITTEE)
    async with session:
        listing = await (await session.get("/api/petitions")).json()
        assert listing["total"] == 4
        assert (await session.get("/api/petitions/4")).status == 200


async def test_audit_is_for_committee_and_admins(web_app: App, clock: ManualClock,
                                                 channel: RecordingChannel) -> None:
    gm, _ = await logged_in(web_app, clock, channel, GM_1)
    admin, _ = await logged_in(web_app, clock, channel, ADMIN)
    async with gm, admin:
        assert (await gm.get("/api/audit")).status == 403
        assert (await gm.get("/dashboard/audit")).status == 403
        entries = (await (await admin.get("/api/audit?action=web:")).json())["entries"]
        assert {e["action"] for e in entries} >= {"web:login", "web:login-code"}


async def test_only_admins_edit_roles(web_app: App, clock: ManualClock,
                                      channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    committee, c_csrf = await logged_in(web_app, clock, channel, COMMITTEE)
    admin, a_csrf = await logged_in(web_app, clock, channel, ADMIN)
    async with committee, admin:
        refused = await committee.post(f"/api/staff/{RESIDENT}", json={"role": "网格员"},
                                       headers={"X-CSRF-Token": c_csrf})
        assert refused.status == 403
        bad_role = await admin.post(f"/api/staff/{RESIDENT}", json={"role": "市长"},
                                    headers={"X-CSRF-Token": a_csrf})
        assert bad_role.status == 400
        bad_grid = await admin.post(f"/api/staff/{RESIDENT}",
                                    json={"role": "网格员", "grids": ["grid-99"]},
                                    headers={"X-CSRF-Token": a_csrf})
        assert bad_grid.status == 400
        self_demote = await admin.post(f"/api/staff/{ADMIN}", json={"role": ""},
                                       headers={"X-CSRF-Token": a_csrf})
        assert self_demote.status == 400
        granted = await admin.post(f"/api/staff/{RESIDENT}",
                                   json={"role": "网格员", "grids": ["grid-01"]},
                                   headers={"X-CSRF-Token": a_csrf})
        assert granted.status == 200
    # the new grid manager can now ask for a code and log in
    session, _ = await logged_in(web_app, clock, channel, RESIDENT)
    async with session:
        me = await (await session.get("/api/me")).json()
        assert me["role"] == "网格员" and me["grids"] == ["grid-01"]


async def test_property_company_cannot_export_points(web_app: App, clock: ManualClock,
                                                     channel: RecordingChannel) -> None:
    session, _ = await logged_in(web_app, clock, channel, PROPERTY)
    async with session:
        assert (await session.get("/api/export/points.csv")).status == 403
        assert (await session.get("/api/export/petitions.csv")).status == 200


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "grid=nowhere", "status=flying", "category=天气", "party=市长", "overdue=maybe",
    "page=0", "page=abc", "page=99999999999",
])
async def test_bad_board_filters_are_400(web_app: App, clock: ManualClock,
                                         channel: RecordingChannel, query: str) -> None:
    session, _ = await logged_in(web_app, clock, channel, ADMIN)
    async with session:
        api = await session.get(f"/api/petitions?{query}")
        assert api.status == 400
        assert (await api.json())["error"] == "bad_request"
        assert (await session.get(f"/dashboard?{query}")).status == 400


@pytest.mark.parametrize("query", [
    "since=yesterday", "since=2026-12-05&until=2026-12-01", "since=2020-01-01",
    "group_by=planet", "grid=nowhere",
])
async def test_bad_stats_queries_are_400(web_app: App, clock: ManualClock,
                                         channel: RecordingChannel, query: str) -> None:
    session, _ = await logged_in(web_app, clock, channel, ADMIN)
    async with session:
        assert (await session.get(f"/api/stats?{query}")).status == 400
        assert (await session.get(f"/dashboard/stats?{query}")).status == 400


async def test_bad_bodies_are_4xx_never_500(web_app: App, clock: ManualClock,
                                            channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, csrf = await logged_in(web_app, clock, channel, ADMIN)
    headers = {"X-CSRF-Token": csrf}
    async with session:
        cases = [
            (await session.post("/api/petitions/1/resolve", data=b"{not json",
                                headers={**headers, "Content-Type": "application/json"}), 400),
            (await session.post("/api/petitions/1/resolve", json=[1, 2], headers=headers), 400),
            (await session.post("/api/petitions/1/resolve", data=b"note=x",
                                headers={**headers, "Content-Type": "text/plain"}), 415),
            (await session.post("/api/petitions/1/resolve",
                                json={"note": "x" * (ops.NOTE_MAX + 1)}, headers=headers), 400),
            (await session.post("/api/petitions/1/resolve", json={"note": 5},
                                headers=headers), 400),
            (await session.post("/api/petitions/1/explode", json={}, headers=headers), 400),
            (await session.post("/api/petitions/1/progress", json={}, headers=headers), 400),
            (await session.post("/api/petitions/1/transfer", json={"party": "市长"},
                                headers=headers), 400),
            (await session.post("/api/petitions/999/accept", json={}, headers=headers), 404),
            (await session.post("/api/petitions/99999999999/accept", json={},
                                headers=headers), 404),
            (await session.post("/api/petitions/1/resolve",
                                json={"note": "x" * 70_000}, headers=headers), 413),
            (await session.get("/api/nothing-here"), 404),
        ]
        for response, expected in cases:
            assert response.status == expected, (response.url, await response.text())
            body = await response.json()
            assert body["message"] and body["error"]
    assert (await petition(web_app, 1)).status == "reported"


async def test_impossible_transition_is_409_with_the_commands_message(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        response = await session.post("/api/petitions/1/reopen", json={},
                                      headers={"X-CSRF-Token": csrf})
        assert response.status == 409
        assert "不能重新办理" in (await response.json())["message"]
        transfer = await session.post("/api/petitions/1/transfer",
                                      json={"party": "居委会", "note": "属于居委会"},
                                      headers={"X-CSRF-Token": csrf})
        assert transfer.status == 200
    row = await petition(web_app, 1)
    assert (row.status, row.party) == ("transferred", "居委会")


async def test_reopen_from_the_page_cancels_the_pending_follow_up(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    from models.tables import Followup

    await seed(web_app, clock)
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        resolved = await session.post("/api/petitions/1/resolve", json={"note": "已修好"},
                                      headers={"X-CSRF-Token": csrf})
        assert resolved.status == 200
        reopened = await session.post("/api/petitions/1/reopen", json={"note": "又坏了"},
                                      headers={"X-CSRF-Token": csrf})
        assert reopened.status == 200
    async with web_app.services.db.session() as db:
        statuses = list(await db.scalars(select(Followup.status).where(
            Followup.petition_id == 1)))
    assert statuses == ["cancelled"]
    assert (await petition(web_app, 1)).status == "reopened"


async def test_unexpected_errors_are_json_500_with_an_id(
        web_app: App, clock: ManualClock, channel: RecordingChannel,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    session, _ = await logged_in(web_app, clock, channel, ADMIN)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ops_notices, "list_reminders", broken)
    async with session:
        response = await session.get("/api/reminders")
        assert response.status == 500
        body = await response.json()
        page = await (await session.get("/dashboard/reminders")).text()
    assert body["error"] == "internal_error" and "secret internals" not in body["message"]
    assert f"error_id={body['error_id']}" in caplog.text
    assert "secret internals" not in page and "错误编号" in page


# --- notices and reminders ------------------------------------------------------------------------


async def test_schedule_and_cancel_a_notice(web_app: App, clock: ManualClock,
                                            channel: RecordingChannel) -> None:
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    headers = {"X-CSRF-Token": csrf}
    due = (clock.now() + timedelta(hours=2)).astimezone(web_app.config.tz)
    async with session:
        elsewhere = await session.post("/api/notices", json={
            "content": "明天停水", "rooms": ["grid-02"]}, headers=headers)
        assert elsewhere.status == 403
        unknown = await session.post("/api/notices", json={
            "content": "明天停水", "rooms": ["room-x"]}, headers=headers)
        assert unknown.status == 400
        past = await session.post("/api/notices", json={
            "content": "明天停水", "rooms": ["grid-01"], "due": "2020-01-01T09:00"},
            headers=headers)
        assert past.status == 400
        empty = await session.post("/api/notices", json={"content": " ", "rooms": ["grid-01"]},
                                   headers=headers)
        assert empty.status == 400
        made = await session.post("/api/notices", json={
            "content": "明天上午停水，请提前储水", "rooms": ["grid-01"],
            "due": f"{due:%Y-%m-%dT%H:%M}"}, headers=headers)
        assert made.status == 201
        notice = await made.json()
        assert notice["kind"] == "notice" and notice["room_ids"] == ["grid-01"]
        listed = await (await session.get("/api/reminders")).json()
        assert [r["id"] for r in listed["reminders"]] == [notice["id"]]
        cancel = f"/api/reminders/{notice['id']}/cancel"
        assert (await session.post(cancel, headers=headers)).status == 200
        assert (await session.post(cancel, headers=headers)).status == 409
    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        row = await db.get(Reminder, notice["id"])
    assert row is not None and row.status == "cancelled" and row.creator_id == GM_1


# --- pages -------------------------------------------------------------------------------------------


async def test_pages_escape_residents_text(web_app: App, clock: ManualClock,
                                           channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, _ = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        board = await session.get("/dashboard")
        detail = await (await session.get("/dashboard/petitions/3")).text()
        assert "script-src 'none'" in board.headers["Content-Security-Policy"]
        board_text = await board.text()
    for page in (board_text, detail):
        assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail


async def test_board_filters_and_simulator_link(web_app: App, clock: ManualClock,
                                                channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, _ = await logged_in(web_app, clock, channel, COMMITTEE)
    async with session:
        page = await (await session.get("/dashboard?grid=grid-02")).text()
        assert "下水道" in page and "电梯" not in page
        assert "群聊模拟器" not in page  # the recording channel is not the simulator
        for path in ("/dashboard/stats?group_by=week", "/dashboard/honor",
                     "/dashboard/reminders", "/dashboard/members", "/dashboard/audit"):
            assert (await session.get(path)).status == 200, path


async def test_points_csv_is_excel_safe(web_app: App, clock: ManualClock,
                                        channel: RecordingChannel) -> None:
    from models.tables import PointEntry

    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        db.add(Member(id=RESIDENT, name="=HYPERLINK(1)", grid_id="grid-01",
                      first_seen=clock.now(), last_seen=clock.now()))
        db.add(PointEntry(member_id=RESIDENT, grid_id="grid-01", delta=5, kind="volunteer",
                          note="陪老人就医", created_at=clock.now(), created_by=GM_1))
    session, _ = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        response = await session.get("/api/export/points.csv")
        raw = await response.read()
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    assert "'=HYPERLINK(1)" in text and "陪老人就医" in text


async def test_honor_roll_page_and_picture(web_app: App, clock: ManualClock,
                                           channel: RecordingChannel) -> None:
    from bot.web import honor
    from models.tables import PointEntry

    roll_module, card = honor._modules()
    if roll_module is None or card is None or card.find_font() is None:
        pytest.skip("needs handlers.honor_roll and a CJK font (fonts-wqy-microhei)")
    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        db.add(Member(id=RESIDENT, name="张阿姨", grid_id="grid-01", first_seen=clock.now(),
                      last_seen=clock.now()))
        db.add(PointEntry(member_id=RESIDENT, grid_id="grid-01", delta=5, kind="volunteer",
                          note="陪老人就医", created_at=clock.now(), created_by=GM_1))
    session, _ = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        page = await (await session.get("/dashboard/honor")).text()
        picture = await session.get("/dashboard/honor/picture.png")
        png = await picture.read()
        other = await session.get("/dashboard/honor/picture.png?grid=grid-02")
        future = await session.get("/dashboard/honor?week=2030-01-07")
    assert "张阿姨" in page and 'src="/dashboard/honor/picture.png?' in page
    assert picture.status == 200 and png.startswith(b"\x89PNG")
    assert other.status == 403
    assert future.status == 400


async def test_password_cli(web_app: App) -> None:
    assert await staff_cli.set_password(web_app.config, "wxid_nobody", "long enough 1") == 1
    assert await staff_cli.set_password(replace(web_app.config), GM_1, "long enough 1") == 0
    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        role = await db.get(StaffRole, GM_1)
    assert role is not None and auth.verify_password("long enough 1", role.password_hash)
    assert not auth.verify_password("long enough 2", role.password_hash)
    assert role.password_hash.startswith("scrypt$")


def test_staff_passwd_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """``weizhili staff passwd ID`` works before the bot ever ran; short passwords refused."""
    from bot.cli import main

    monkeypatch.delenv("WEIZHILI_CONFIG", raising=False)
    monkeypatch.delenv("WEIZHILI_DATABASE_URL", raising=False)
    monkeypatch.setenv("WEIZHILI_DATA", str(tmp_path / "data"))
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["staff", "passwd", ADMIN, "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert main(["staff", "passwd", ADMIN, "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert main(["staff", "passwd", "wxid_stranger", "--password-stdin"]) == 1
    assert main(["staff", "list"]) == 0
    listed = capsys.readouterr().out
    assert re.search(rf"^{ADMIN}\t.*\tpassword$", listed, re.M)
    assert re.search(rf"^{GM_1}\t.*\t-$", listed, re.M)


# --- replies waiting for staff ------------------------------------------------------------


async def test_staff_resend_held_replies_of_their_own_grids(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    from bot.outbox import UNSURE
    from models.tables import OutboundMessage

    services = web_app.services
    assert services is not None
    async with services.db.session() as session:
        mine = services.outbox.add(session, "grid-01", "【提醒】周六上午九点<b>停水</b>")[0]
        other = services.outbox.add(session, "grid-02", "【提醒】二网格的通知")[0]
    async with services.db.session() as session:
        for row in (mine, other):
            (await session.get(OutboundMessage, row.id)).status = UNSURE

    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        page = await (await session.get("/dashboard/outbox")).text()
        assert f"#{mine.id}" in page and f"#{other.id}" not in page  # grid 1 only
        assert "&lt;b&gt;停水&lt;/b&gt;" in page and "<b>停水" not in page
        refused = await session.post(f"/dashboard/outbox/{other.id}/resend",
                                     data={"_csrf": csrf}, allow_redirects=False)
        assert refused.status == 404
        done = await session.post(f"/dashboard/outbox/{mine.id}/resend",
                                  data={"_csrf": csrf}, allow_redirects=False)
        assert done.status == 303
        again = await session.post(f"/dashboard/outbox/{mine.id}/resend",
                                   data={"_csrf": csrf}, allow_redirects=False)
        assert again.status == 404  # released once, not twice
    await drain(web_app)
    assert channel.texts("grid-01").count("【提醒】周六上午九点<b>停水</b>") == 1
    assert channel.texts("grid-02") == []
    async with services.db.session() as session:
        audit = list(await session.scalars(
            select(AuditEntry.allowed).where(AuditEntry.action == "outbox:resend")
            .order_by(AuditEntry.id)))
    assert audit == [False, True, False]


async def test_the_api_lists_and_resends_held_replies(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    from bot.outbox import UNSURE
    from models.tables import OutboundMessage

    services = web_app.services
    assert services is not None
    async with services.db.session() as session:
        mine = services.outbox.add(session, "grid-01", "【通知】明天停电")[0]
        other = services.outbox.add(session, "grid-02", "【通知】二网格停水")[0]
    async with services.db.session() as session:
        for row in (mine, other):
            (await session.get(OutboundMessage, row.id)).status = UNSURE

    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        listed = await (await session.get("/api/outbox")).json()
        assert [(r["id"], r["status"], r["resendable"]) for r in listed["rows"]] == [
            (mine.id, UNSURE, True)]
        assert (await session.post(f"/api/outbox/{mine.id}/resend")).status == 403  # no token
        headers = {"X-CSRF-Token": csrf}
        assert (await session.post(f"/api/outbox/{other.id}/resend",
                                   headers=headers)).status == 404  # not their grid
        assert (await session.post(f"/api/outbox/{mine.id}/resend",
                                   headers=headers)).status == 200
        again = await session.post(f"/api/outbox/{mine.id}/resend", headers=headers)
        assert again.status == 404 and (await again.json())["error"]
        assert (await (await session.get("/api/outbox")).json())["rows"] == []
    await drain(web_app)
    assert channel.texts("grid-01") == ["【通知】明天停电"]


async def test_posts_waiting_for_an_absent_account_are_shown_without_a_button(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    from bot.web.pages_outbox import STALE_MINUTES

    services = web_app.services
    assert services is not None
    async with services.db.session() as session:
        waiting = services.outbox.add(session, "grid-01", "【提醒】交取暖费",
                                      account="wxid_bot_elsewhere")[0]
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        assert (await (await session.get("/api/outbox")).json())["rows"] == []  # not yet
        clock.advance(timedelta(minutes=STALE_MINUTES + 1))
        rows = (await (await session.get("/api/outbox")).json())["rows"]
        assert [(r["id"], r["status"], r["account"], r["resendable"]) for r in rows] == [
            (waiting.id, "waiting_account", "wxid_bot_elsewhere", False)]
        page = await (await session.get("/dashboard/outbox")).text()
        assert "等待其他账号发送" in page and "wxid_bot_elsewhere" in page
        assert f"/dashboard/outbox/{waiting.id}/resend" not in page
        refused = await session.post(f"/api/outbox/{waiting.id}/resend",
                                     headers={"X-CSRF-Token": csrf})
        assert refused.status == 404
    await drain(web_app)
    assert channel.texts("grid-01") == []  # this process never posts another account's row
