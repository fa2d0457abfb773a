"""Commands everyone has: help."""

from __future__ import annotations

from bot.context import MessageContext
from handlers.commands import CommandRouter

router = CommandRouter()


@router.command("帮助", "help", "?", bare=True, usage="/帮助")
async def show_help(ctx: MessageContext, args: list[str]) -> None:
    """列出您可以使用的命令"""
    from handlers.registry import commands

    intro = ("有事直接在群里说就行，我会登记并转给负责的人；"
             "也可以说“明天上午九点提醒我……”。\n")
    ctx.reply(intro + commands().help_text(ctx))
