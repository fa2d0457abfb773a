"""Dashboard authentication: login codes, passwords, signed session cookies, CSRF.

A staff member logs in with a one-time code the bot sends by private message
(``/登录``) or with a password an admin set (``weizhili staff passwd ID``,
:mod:`bot.web.staff_cli`). The
session is a cookie signed with HMAC-SHA256 (HttpOnly, SameSite=Lax); its payload
holds the member id, when it was signed, an expiry and a nonce from which the CSRF
token is derived. Logging out, or a new password, moves the member's
``staff_roles.sessions_from`` to now: every cookie signed before it is refused, so a
copied cookie stops working too (on every device of that member).
Every state change needs that token and, when the browser says where it comes from,
the same Origin (field report B32). Rights are read from ``staff_roles`` on every
request, so a role taken away stops working at once; taking it away also ends the
member's sessions, so giving it back later does not revive the old cookies.

Failed logins are limited per address and per account; an attempt counts as failed
from the moment it starts, so attempts sent all at once cannot outrun the limit.

Refusals are aiohttp HTTP exceptions whose ``text`` is the Chinese message:
:class:`NotLoggedInError` (401) and :class:`ForbiddenError` (403).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.arrival import storable_text
from bot.config import Config
from bot.context import MessageContext, StaffInfo
from bot.web.keys import SERVICES
from handlers.commands import STAFF, CommandRouter
from models.tables import AuditEntry, LoginToken, StaffRole

log = logging.getLogger(__name__)

COOKIE = "wzl_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "_csrf"
SESSION_SECONDS = 12 * 3600
CODE_MINUTES = 10
CODE_DIGITS = 8
SECRET_FILE = "web-secret"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 15 * 60


class NotLoggedInError(web.HTTPUnauthorized):
    """No valid session: 401."""


class ForbiddenError(web.HTTPForbidden):
    """A session without the right to do this: 403."""


@dataclass(frozen=True)
class User:
    """The logged-in staff member, with the CSRF token of this session."""

    member_id: str
    name: str
    role: str
    grids: tuple[str, ...]
    csrf: str

    @property
    def info(self) -> StaffInfo:
        return StaffInfo(self.member_id, self.name, self.role, self.grids)

    def covers(self, grid_id: str | None) -> bool:
        """Whether this member may see and act on the given grid."""
        return self.info.covers(grid_id)

    @property
    def all_grids(self) -> bool:
        return self.role in ("管理员", "居委会") or not self.grids


# --- passwords -------------------------------------------------------------------

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A salted scrypt hash, stored as ``scrypt$n$r$p$salt$hash``."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R,
                            p=_SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P),
                     _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password`."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the signing secret ------------------------------------------------------------


def load_secret(config: Config) -> bytes:
    """``web.secret`` from the config, else one generated once in the data folder (0600)."""
    if config.web.secret:
        return config.web.secret.encode()
    path = Path(config.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) >= 32:
            return secret.encode()
        raise RuntimeError(f"{path}: the dashboard secret is too short; delete the file") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32))
    log.info("dashboard secret generated path=%s", path)
    return path.read_text(encoding="ascii").strip().encode()


# --- signed sessions ---------------------------------------------------------------


@dataclass
class LoginLimiter:
    """Failed login attempts per key (address, account), in a sliding window.

    An attempt counts as a failure from the moment it starts (:meth:`begin`, with no
    await between the check and the mark), and the mark is taken back only when it
    succeeds (:meth:`release`). So attempts sent all at once cannot slip past the
    limit while the first ones are still being checked: at most ``limit`` attempts
    per key and window are ever evaluated.
    """

    limit: int = MAX_FAILURES
    window: float = FAILURE_WINDOW_SECONDS
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, *keys: str) -> int:
        """Seconds to wait before another attempt, or 0 when allowed."""
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            times = self._failures.get(key)
            if not times:
                continue
            while times and now - times[0] > self.window:
                times.popleft()
            if len(times) >= self.limit:
                wait = max(wait, self.window - (now - times[0]), 0.001)
        return int(wait) + 1 if wait else 0

    def begin(self, *keys: str) -> float | None:
        """Mark an attempt as failed before checking it: the mark, or None when over the limit."""
        if self.retry_after(*keys):
            return None
        mark = time.monotonic()
        for key in keys:
            self._failures.setdefault(key, deque()).append(mark)
        if len(self._failures) > 10_000:  # forget the oldest keys rather than grow forever
            for key in list(self._failures)[:5_000]:
                if key not in keys:
                    del self._failures[key]
        return mark

    def release(self, mark: float, *keys: str) -> None:
        """Take back the mark of an attempt that succeeded."""
        for key in keys:
            times = self._failures.get(key)
            if times is None:
                continue
            try:
                times.remove(mark)
            except ValueError:  # already out of the window, or the key was cleared
                pass
            if not times:
                del self._failures[key]

    def succeed(self, key: str) -> None:
        """Forget the failures of this key (an account whose owner just logged in)."""
        self._failures.pop(key, None)


@dataclass
class Auth:
    """The signing secret and the login limiter of one web application."""

    secret: bytes
    limiter: LoginLimiter = field(default_factory=LoginLimiter)

    def sign(self, payload: dict[str, object]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def unsign(self, value: str) -> dict[str, object] | None:
        """The payload of a cookie we signed and that has not expired, else None."""
        if not value.isascii():  # ours are base64: anything else is no session
            return None
        body, _, mac = value.partition(".")
        if not body or not mac or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("e"), int):
            return None
        if payload["e"] < time.time():
            return None
        return payload

    def csrf_for(self, nonce: str) -> str:
        return hmac.new(self.secret, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())


AUTH: web.AppKey[Auth] = web.AppKey("auth", Auth)
USER: web.RequestKey[User | None] = web.RequestKey("user")


def set_session(request: web.Request, response: web.StreamResponse, member_id: str) -> None:
    """Log the member in: a fresh signed cookie with a new CSRF nonce."""
    auth = request.app[AUTH]
    payload = {"u": member_id, "n": secrets.token_urlsafe(12), "i": now_ms(),
               "e": int(time.time()) + SESSION_SECONDS}
    response.set_cookie(COOKIE, auth.sign(payload), max_age=SESSION_SECONDS, path="/",
                        httponly=True, samesite="Lax", secure=request.secure)


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


def now_ms() -> int:
    """Wall-clock Unix milliseconds, the unit of cookies' signing times."""
    return time.time_ns() // 1_000_000


def cut_off_sessions(role: StaffRole) -> None:
    """Refuse every dashboard session of this role's member signed until now."""
    role.sessions_from = now_ms() + 1


async def end_sessions(session: AsyncSession, member_id: str, *, actor: str,
                       why: str, at: datetime) -> None:
    """Refuse every dashboard session of this member signed until now."""
    role = await session.get(StaffRole, member_id)
    if role is None:
        return
    cut_off_sessions(role)
    session.add(AuditEntry(at=at, actor_id=actor,
                           action="web:sessions_ended", target=member_id, detail=why))
    log.info("dashboard sessions ended member=%s why=%s", member_id, why)


async def log_out(request: web.Request, user: User,
                  response: web.StreamResponse) -> None:
    """End this member's sessions on the server and drop the cookie."""
    services = request.app[SERVICES]
    async with services.db.session() as session:
        await end_sessions(session, user.member_id, actor=user.member_id, why="logout",
                           at=services.now())
    clear_session(response)


async def current_user(request: web.Request) -> User | None:
    """The staff member of this request's session cookie, cached on the request."""
    if USER in request:
        return request[USER]
    user = None
    raw = request.cookies.get(COOKIE, "")
    payload = request.app[AUTH].unsign(raw) if raw else None
    if payload is not None and isinstance(payload.get("u"), str):
        services = request.app[SERVICES]
        async with services.db.session() as session:
            role = await session.get(StaffRole, payload["u"])
        signed = payload.get("i")
        signed_at = signed if isinstance(signed, int) else 0
        if (role is not None and role.active and role.role in STAFF
                and signed_at >= (role.sessions_from or 0)):
            user = User(role.member_id, role.name or role.member_id, role.role,
                        tuple(role.grids or ()), request.app[AUTH].csrf_for(str(payload["n"])))
    request[USER] = user
    return user


async def require_user(request: web.Request, roles: frozenset[str] = STAFF) -> User:
    """The logged-in member with one of ``roles``; 401 without a session, 403 without rights."""
    user = await current_user(request)
    if user is None:
        raise NotLoggedInError(text="请先登录管理后台。")
    if user.role not in roles:
        raise ForbiddenError(text="您的角色没有权限访问这里。")
    return user


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site."""
    own = f"{request.scheme}://{request.host}"
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("Referer")
    if referer:
        return referer == own or referer.startswith(own + "/")
    return True  # no browser hint: the token alone decides


def check_csrf(request: web.Request, user: User, form_token: str | None = None) -> None:
    """403 unless the request carries this session's token and no foreign Origin."""
    if not same_origin(request):
        raise ForbiddenError(text="请求来源不是本站，已拒绝。")
    token = request.headers.get(CSRF_HEADER) or form_token or ""
    if not token.isascii() or not hmac.compare_digest(token.encode(), user.csrf.encode()):
        raise ForbiddenError(text="缺少或错误的安全令牌（CSRF），请刷新页面后重试。")


# --- logging in ----------------------------------------------------------------------


def clean_text(value: str) -> str:
    """Text safe to store: lone surrogates become U+FFFD, NUL characters are dropped.

    JSON may carry a lone surrogate (``"\\ud800"``), which cannot be encoded as UTF-8
    later, and PostgreSQL refuses NUL in text columns. What arrives by chat is made
    storable the same way (:mod:`bot.arrival`), there keeping NUL as a mark.
    """
    return storable_text(value.replace("\x00", ""))


def normalize_code(code: str) -> str:
    """A login code as typed: full-width digits (an IME) become ASCII, spaces go."""
    return "".join(unicodedata.normalize("NFKC", code).split())


def _code_key(code: str) -> str:
    return hashlib.sha256(f"login-code:{code}".encode()).hexdigest()


async def issue_login_code(session: AsyncSession, member_id: str, now: datetime) -> str:
    """A new one-time code for ``member_id``; only its hash is stored."""
    await session.execute(delete(LoginToken).where(LoginToken.expires_at < now))
    await session.execute(delete(LoginToken).where(LoginToken.member_id == member_id,
                                                   LoginToken.used.is_(False)))
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    session.add(LoginToken(code=_code_key(code), member_id=member_id,
                           expires_at=now + timedelta(minutes=CODE_MINUTES), used=False))
    return code


async def redeem_login_code(session: AsyncSession, code: str, now: datetime) -> str | None:
    """The member id for a valid unused code, marking it used; None otherwise."""
    code = normalize_code(code)
    if not (code.isascii() and code.isdigit()) or len(code) != CODE_DIGITS:
        return None
    token = await session.get(LoginToken, _code_key(code))
    if token is None or token.used or token.expires_at <= now:
        return None
    token.used = True
    return token.member_id


@dataclass(frozen=True)
class LoginResult:
    member_id: str | None
    message: str
    status: int


async def attempt_login(request: web.Request, *, code: str = "", account: str = "",
                        password: str = "") -> LoginResult:
    """Check a code or an account and password, with rate limiting; audit the outcome."""
    auth = request.app[AUTH]
    services = request.app[SERVICES]
    code, account, password = clean_text(code), clean_text(account), clean_text(password)
    address = f"ip:{request.remote or '?'}"
    keys = [address] + ([f"acct:{account}"] if account else [])
    # counted as a failure now, before any await; taken back below if it succeeds
    mark = auth.limiter.begin(*keys)
    if mark is None:
        wait = auth.limiter.retry_after(*keys)
        log.debug("dashboard login rate-limited method=%s remote=%s",
                 "code" if code else "password", request.remote)
        return LoginResult(None, f"尝试次数过多，请 {wait // 60 + 1} 分钟后再试。", 429)

    now = services.now()
    member_id: str | None = None
    async with services.db.session() as session:
        if code:
            member_id = await redeem_login_code(session, code, now)
        elif account and password:
            role = await session.get(StaffRole, account)
            stored = role.password_hash if role is not None and role.active else ""
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(None, verify_password, password,
                                            stored or _DUMMY_HASH)
            member_id = account if ok and stored else None
        if member_id is not None:
            role = await session.get(StaffRole, member_id)
            if role is None or not role.active or role.role not in STAFF:
                member_id = None
        session.add(AuditEntry(at=now, actor_id=member_id or account or "?",
                               action="web:login", allowed=member_id is not None,
                               target=request.remote or "",
                               detail="code" if code else "password"))
    if member_id is None:
        log.info("dashboard login refused method=%s remote=%s",
                 "code" if code else "password", request.remote)
        return LoginResult(None, "登录码或密码不对，或已过期。", 401)
    auth.limiter.release(mark, *keys)
    auth.limiter.succeed(f"acct:{member_id}")
    log.info("dashboard login member=%s method=%s", member_id, "code" if code else "password")
    return LoginResult(member_id, "", 200)


_DUMMY_HASH = hash_password(secrets.token_hex(8))  # same cost for unknown accounts


# --- the /登录 command -----------------------------------------------------------------

router = CommandRouter()


@router.command("登录", "login", roles=STAFF, usage="/登录")
async def login_command(ctx: MessageContext, args: list[str]) -> None:
    """私聊获取管理后台的一次性登录码"""
    if not ctx.is_private:
        ctx.reply("为了安全，请私聊我发送“/登录”，登录码不会发在群里。", mention_sender=True)
        return
    code = await issue_login_code(ctx.session, ctx.sender_id, ctx.now)
    ctx.session.add(AuditEntry(at=ctx.now, actor_id=ctx.sender_id, action="web:login-code",
                               detail="issued by private message"))
    ctx.reply(f"管理后台登录码：{code}\n{CODE_MINUTES} 分钟内有效，只能用一次。"
              "请勿转发给他人。", mask=False)
    log.info("login code issued member=%s", ctx.sender_id)
