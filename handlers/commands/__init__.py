"""Slash commands: each module keeps a :class:`CommandRouter`; the registry orders them.

A command is ``/名称 参数…`` (a full-width slash works too) or, for the few that
residents use, the bare word (``撤回 12``, ``取消提醒 7``). Rights come from the
sender's WeChat id and staff role, never from a display name (field report B27);
a refused command gets a short polite reply and an audit row.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from bot.context import MessageContext
from models.tables import AuditEntry

log = logging.getLogger(__name__)

STAFF = frozenset({"网格员", "居委会", "物业", "管理员"})
MANAGERS = frozenset({"网格员", "居委会", "管理员"})
ADMINS = frozenset({"管理员"})

CommandFunc = Callable[[MessageContext, list[str]], Awaitable[None]]


class CommandError(Exception):
    """A user mistake in a command; the message is the Chinese reply."""


@dataclass(frozen=True)
class Command:
    names: tuple[str, ...]
    func: CommandFunc
    roles: frozenset[str] | None
    usage: str
    bare: bool

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def summary(self) -> str:
        doc = (self.func.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""

    def allowed(self, ctx: MessageContext) -> bool:
        return self.roles is None or (ctx.staff is not None and ctx.staff.role in self.roles)


class CommandRouter:
    """Commands of one feature module."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def command(self, *names: str, roles: Iterable[str] | None = None, usage: str = "",
                bare: bool = False) -> Callable[[CommandFunc], CommandFunc]:
        """Register a command under its Chinese name and aliases."""

        def decorator(func: CommandFunc) -> CommandFunc:
            self.commands.append(Command(tuple(names), func,
                                         frozenset(roles) if roles is not None else None,
                                         usage or f"/{names[0]}", bare))
            return func

        return decorator


_SLASH = re.compile(r"^[/／]\s*(\S+)\s*(.*)$", re.S)


class CommandTable:
    """Every command, looked up by any of its names."""

    def __init__(self, routers: Iterable[CommandRouter]) -> None:
        self.ordered: list[Command] = []
        self.by_name: dict[str, Command] = {}
        for router in routers:
            for command in router.commands:
                self.ordered.append(command)
                for name in command.names:
                    if name in self.by_name:
                        raise ValueError(f"command name {name!r} registered twice")
                    self.by_name[name.lower()] = command

    def parse(self, text: str) -> tuple[str, list[str]] | None:
        """Split ``/名称 参数`` (or a bare resident command) into name and arguments."""
        text = text.strip()
        match = _SLASH.match(text)
        if match:
            name, rest = match.group(1), match.group(2)
            return _split_name(name, rest)
        for command in self.ordered:
            if not command.bare:
                continue
            for name in command.names:
                if text == name or (text.startswith(name) and _bare_args(text[len(name):])):
                    return name, text[len(name):].split()
        return None

    async def handle(self, ctx: MessageContext) -> bool:
        """Run the command in the message, if there is one; returns whether there was."""
        parsed = self.parse(ctx.norm.text)
        if parsed is None:
            return False
        name, args = parsed
        command = self.by_name.get(name.lower())
        if command is None:
            self._unknown(ctx, name)
            ctx.outcome = "command:unknown"
            return True
        if not command.allowed(ctx):
            ctx.reply(f"抱歉，“/{command.name}”只有工作人员可以使用。", mention_sender=True)
            ctx.session.add(AuditEntry(at=ctx.now, actor_id=ctx.sender_id,
                                       action=f"command:{command.name}", allowed=False,
                                       target=" ".join(args)[:128],
                                       detail="refused: no staff role for this id"))
            log.info("command refused command=%s sender=%s", command.name, ctx.sender_id)
            ctx.outcome = "command:refused"
            return True
        try:
            await command.func(ctx, args)
        except CommandError as exc:
            ctx.reply(str(exc), mention_sender=True)
        ctx.outcome = f"command:{command.name}"
        return True

    def _unknown(self, ctx: MessageContext, name: str) -> None:
        names = [n for c in self.ordered if c.allowed(ctx) for n in c.names]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
        hint = f"您是不是想用“/{close[0]}”？" if close else ""
        ctx.reply(f"没有“/{name}”这个命令。{hint}发送“/帮助”查看可用的命令。",
                  mention_sender=True)

    def help_text(self, ctx: MessageContext) -> str:
        lines = ["可用的命令："]
        for command in self.ordered:
            if command.allowed(ctx):
                lines.append(f"{command.usage}　{command.summary}")
        return "\n".join(lines)


def _split_name(name: str, rest: str) -> tuple[str, list[str]]:
    # "/受理12" and "/受理 #12" both mean accepting petition 12.
    match = re.match(r"^(\D+?)#?(\d+)$", name)
    if match:
        return match.group(1), [match.group(2), *rest.split()]
    return name, rest.split()


def _bare_args(rest: str) -> bool:
    return bool(re.match(r"^\s*#?\d+(\s|$)", rest))


def record_number(arg: str) -> int | None:
    """A record number as written (``12``, ``#12``, full-width ``１２``), or None.

    At most nine digits: a longer one names no record and would not fit the column.
    """
    raw = arg.lstrip("#")
    return int(raw) if raw.isdecimal() and len(raw) <= 9 else None


def petition_number(args: list[str], usage: str) -> int:
    """The petition number in the first argument (``12`` or ``#12``)."""
    if not args:
        raise CommandError(f"请写上诉求编号，例如：{usage}")
    number = record_number(args[0])
    if number is None:
        raise CommandError(f"“{args[0][:10]}”不是诉求编号，例如：{usage}")
    return number
