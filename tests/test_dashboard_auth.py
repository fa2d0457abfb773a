"""Dashboard login and sessions under attack: concurrent guessing, odd cookies, odd text.

Each test drives the real server started by the fixtures of ``test_dashboard_api``.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.clock import ManualClock
from bot.web import auth, ops, staff_cli
from models.tables import AuditEntry, PetitionEvent, Reminder, StaffRole
from tests import test_dashboard_api
from tests.conftest import ADMIN, COMMITTEE, GM_1, PROPERTY
from tests.fakes import RecordingChannel
from tests.test_dashboard_api import base_url, client, logged_in, login_code, seed

web_app = test_dashboard_api.web_app  # the fixture: a bot with its web server on a free port

WRONG_CODES = 200
WRONG_PASSWORDS = 40


async def _refused_logins(app: App) -> int:
    assert app.services is not None
    async with app.services.db.session() as db:
        return int(await db.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "web:login", AuditEntry.allowed.is_(False))) or 0)


# --- 1. the rate limit holds however the attempts are timed --------------------------------


async def test_concurrent_wrong_codes_are_limited(web_app: App) -> None:
    async with client(web_app) as session:
        async def guess(n: int) -> int:
            response = await session.post("/api/login", json={"code": f"{n:08d}"})
            return response.status

        statuses = Counter(await asyncio.gather(*(guess(n) for n in range(WRONG_CODES))))
    assert statuses == {401: auth.MAX_FAILURES, 429: WRONG_CODES - auth.MAX_FAILURES}
    assert await _refused_logins(web_app) == auth.MAX_FAILURES


async def test_concurrent_wrong_passwords_are_limited(
        web_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await staff_cli.set_password(web_app.config, ADMIN, "correct horse 1") == 0
    checked = 0
    real_verify = auth.verify_password

    def counting_verify(password: str, stored: str) -> bool:
        nonlocal checked
        checked += 1
        return real_verify(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting_verify)
    async with client(web_app) as session:
        async def guess(n: int) -> int:
            response = await session.post("/api/login", json={
                "account": ADMIN, "password": f"guess {n}"})
            return response.status

        statuses = Counter(await asyncio.gather(*(guess(n) for n in range(WRONG_PASSWORDS))))
        right = await session.post("/api/login", json={"account": ADMIN,
                                                       "password": "correct horse 1"})
    assert statuses == {401: auth.MAX_FAILURES, 429: WRONG_PASSWORDS - auth.MAX_FAILURES}
    assert checked == auth.MAX_FAILURES
    assert right.status == 429  # locked, even with the right password
    assert await _refused_logins(web_app) == auth.MAX_FAILURES


async def test_successful_logins_do_not_count_as_failures(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    """The mark made before the check is taken back when the login succeeds."""
    for _ in range(auth.MAX_FAILURES + 2):
        code = await login_code(web_app, clock, channel, GM_1)
        async with client(web_app) as session:
            assert (await session.post("/api/login", json={"code": code})).status == 200
    async with client(web_app) as session:
        for _ in range(auth.MAX_FAILURES):
            assert (await session.post("/api/login", json={"code": "00000000"})).status == 401
        assert (await session.post("/api/login", json={"code": "00000000"})).status == 429


async def test_concurrent_right_codes_all_get_in(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    """Fewer attempts than the limit at once, all good: none is refused."""
    codes = [await login_code(web_app, clock, channel, member)
             for member in (GM_1, ADMIN, COMMITTEE, PROPERTY)]

    async def use(code: str) -> int:
        async with client(web_app) as session:
            return (await session.post("/api/login", json={"code": code})).status

    assert await asyncio.gather(*(use(c) for c in codes)) == [200] * len(codes)


def test_limiter_marks_before_the_check_and_takes_the_mark_back() -> None:
    limiter = auth.LoginLimiter(limit=2, window=60)
    first = limiter.begin("ip:x")
    second = limiter.begin("ip:x")
    assert first is not None and second is not None
    assert limiter.begin("ip:x") is None  # two still being checked: the limit is reached
    assert limiter.retry_after("ip:x") > 0
    limiter.release(first, "ip:x")  # the first one succeeded
    assert limiter.begin("ip:x") is not None
    assert limiter.begin("ip:x") is None


# --- 2. a cookie that is not ASCII is no session ----------------------------------------------


async def _raw_get(app: App, path: str, header: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", app.web_port)
    writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header
                 + b"\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize("value", ["é.é", "abc.é", "é.abc", "中文"])
async def test_a_non_ascii_cookie_is_no_session(web_app: App, value: str) -> None:
    headers = {"Cookie": f"{auth.COOKIE}={value}"}
    async with aiohttp.ClientSession(base_url(web_app)) as session:
        login = await session.get("/dashboard/login", headers=headers)
        assert login.status == 200 and "登录码" in await login.text()
        assert (await session.get("/dashboard", headers=headers,
                                  allow_redirects=False)).status == 401
        me = await session.get("/api/me", headers=headers)
        assert me.status == 401
        assert (await me.json())["error"] == "not_logged_in"


async def test_a_cookie_or_token_that_is_not_utf8_is_refused_cleanly(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    for path in ("/dashboard/login", "/api/me"):
        answer = await _raw_get(web_app, path, b"Cookie: " + auth.COOKIE.encode()
                                + b"=\xff\xfe.\xff")
        assert answer.split(b" ", 2)[1] in (b"200", b"401"), answer[:200]
    session, _ = await logged_in(web_app, clock, channel, GM_1)
    async with session:
        cookie = next(c.value for c in session.cookie_jar if c.key == auth.COOKIE)
    reader, writer = await asyncio.open_connection("127.0.0.1", web_app.web_port)
    writer.write(b"POST /api/logout HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: "
                 + f"{auth.COOKIE}={cookie}".encode()
                 + b"\r\nX-CSRF-Token: \xff\xfe\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.split(b" ", 2)[1] == b"403", answer[:200]


def test_unsign_refuses_non_ascii_without_raising() -> None:
    signer = auth.Auth(b"a secret that is long enough for the test!!")
    good = signer.sign({"u": "x", "n": "y", "i": 1, "e": 2**40})
    assert signer.unsign(good) is not None
    for value in ("é.é", good + "é", "é" + good, "\udcff.\udcff"):
        assert signer.unsign(value) is None


# --- 3. a role given back does not revive old cookies ------------------------------------------


async def test_a_role_given_back_does_not_revive_old_sessions(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    admin, admin_csrf = await logged_in(web_app, clock, channel, ADMIN)
    member, _ = await logged_in(web_app, clock, channel, GM_1)
    headers = {"X-CSRF-Token": admin_csrf}
    async with admin, member:
        assert (await member.get("/api/me")).status == 200
        removed = await admin.post(f"/api/staff/{GM_1}", json={"role": ""}, headers=headers)
        assert removed.status == 200, await removed.text()
        assert (await member.get("/api/me")).status == 401
        back = await admin.post(f"/api/staff/{GM_1}", json={"role": "网格员",
                                                            "grids": ["grid-01"]},
                                headers=headers)
        assert back.status == 200, await back.text()
        assert (await member.get("/api/me")).status == 401  # the old cookie stays dead
    again, _ = await logged_in(web_app, clock, channel, GM_1)  # a new login works
    async with again:
        assert (await again.get("/api/me")).status == 200
    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        ended = list(await db.scalars(select(AuditEntry).where(
            AuditEntry.action == "web:sessions_ended", AuditEntry.target == GM_1)))
        role = await db.get(StaffRole, GM_1)
    assert len(ended) == 1 and ended[0].actor_id == ADMIN
    assert role is not None and role.active


async def test_a_role_removed_from_the_form_ends_the_sessions(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    admin, admin_csrf = await logged_in(web_app, clock, channel, ADMIN)
    member, _ = await logged_in(web_app, clock, channel, GM_1)
    async with admin, member:
        response = await admin.post(f"/dashboard/staff/{GM_1}",
                                    data={"role": "", "_csrf": admin_csrf},
                                    allow_redirects=False)
        assert response.status == 303, await response.text()
        assert web_app.services is not None
        async with web_app.services.db.session() as db:
            role = await db.get(StaffRole, GM_1)
            assert role is not None
            role.active = True  # even switched back on behind the dashboard's back
        assert (await member.get("/api/me")).status == 401


# --- 4. a code typed with full-width digits ----------------------------------------------------


@pytest.mark.parametrize("shape", ["fullwidth", "spaced", "ideographic space"])
async def test_a_code_in_full_width_digits_works(web_app: App, clock: ManualClock,
                                                 channel: RecordingChannel, shape: str) -> None:
    code = await login_code(web_app, clock, channel, GM_1)
    typed = {
        "fullwidth": "".join(chr(ord(c) + 0xFEE0) for c in code),
        "spaced": f" {code[:4]} {code[4:]} ",
        "ideographic space": "".join(chr(ord(c) + 0xFEE0) for c in code[:4]) + "\u3000"
                             + code[4:],
    }[shape]
    async with client(web_app) as session:
        response = await session.post("/api/login", json={"code": typed})
        assert response.status == 200, await response.text()
        assert (await session.get("/api/me")).status == 200
    assert await _refused_logins(web_app) == 0


async def test_other_digits_are_not_a_code(web_app: App, clock: ManualClock,
                                           channel: RecordingChannel) -> None:
    code = await login_code(web_app, clock, channel, GM_1)
    arabic = "".join(chr(ord(c) - ord("0") + 0x0660) for c in code)  # Arabic-Indic digits
    async with client(web_app) as session:
        assert (await session.post("/api/login", json={"code": arabic})).status == 401
        assert (await session.post("/api/login", json={"code": code})).status == 200


# --- 5. lone surrogates and NUL characters in text inputs ---------------------------------------


def test_text_arg_cleans_surrogates_and_nul() -> None:
    data = {"note": " 已\x00处理\ud800好 ", "pair": "\ud83d\ude00"}
    assert ops.text_arg(data, "note", limit=10) == "已处理\ufffd好"
    assert ops.text_arg(data, "pair", limit=10) == "\ufffd\ufffd"
    assert ops.text_arg({"x": "\x00 \x00"}, "x", limit=5) == ""
    with pytest.raises(ops.InputError):
        ops.text_arg({"x": "\x00\x00"}, "x", limit=5, required=True)
    assert len(ops.text_arg({"x": "\x00" * 10 + "好"}, "x", limit=1)) == 1  # after cleaning


async def test_surrogates_and_nul_in_notes_and_notices_are_stored_clean(
        web_app: App, clock: ManualClock, channel: RecordingChannel) -> None:
    await seed(web_app, clock)
    session, csrf = await logged_in(web_app, clock, channel, GM_1)
    headers = {"X-CSRF-Token": csrf}
    async with session:
        accepted = await session.post("/api/petitions/1/accept",
                                      json={"note": "师傅\x00已上门\ud800"}, headers=headers)
        assert accepted.status == 200, await accepted.text()
        detail = await (await session.get("/api/petitions/1")).json()
        assert detail["history"][-1]["note"] == "师傅已上门\ufffd"
        notice = await session.post("/api/notices", json={
            "content": "明天\x00停水\udfff", "rooms": ["grid-01"]}, headers=headers)
        assert notice.status == 201, await notice.text()
        board = await session.get("/dashboard/petitions/1")
        assert board.status == 200
        reminders = await session.get("/dashboard/reminders")
        assert reminders.status == 200
        members = await session.get("/api/members", params={"q": "张\x00"})
        assert members.status == 200
        assert (await session.get("/api/audit", params={"actor": "a\x00b"})).status in (200, 403)
    assert web_app.services is not None
    async with web_app.services.db.session() as db:
        notes = [e.note for e in await db.scalars(select(PetitionEvent))]
        contents = [r.content for r in await db.scalars(select(Reminder))]
    assert "师傅已上门\ufffd" in notes
    assert contents == ["明天停水\ufffd"]


@pytest.mark.parametrize("body", [
    {"account": "\ud800", "password": "x"},
    {"account": "wxid\x00admin", "password": "x"},
    {"account": ADMIN, "password": "pass\ud800word"},
    {"account": ADMIN, "password": "pass\x00word"},
    {"code": "1234\x005678"},
    {"code": "\udfff"},
])
async def test_odd_login_strings_are_a_plain_refusal(web_app: App, body: dict[str, str]) -> None:
    async with client(web_app) as session:
        response = await session.post("/api/login", json=body)
        assert response.status in (400, 401), await response.text()
        assert (await response.json())["error"] in ("bad_request", "login_failed")


async def test_odd_form_login_strings_are_a_plain_refusal(web_app: App) -> None:
    async with client(web_app) as session:
        for data in ({"account": "wxid\x00admin", "password": "x"},
                     {"account": ADMIN, "password": "a\x00b"},
                     {"code": "\x00" * 8}):
            response = await session.post("/dashboard/login", data=data,
                                          allow_redirects=False)
            assert response.status in (400, 401), await response.text()
            assert "登录" in await response.text()
