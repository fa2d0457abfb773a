"""Staff commands about the bot's own messages: resending what a crash left unsure."""

from __future__ import annotations

from bot.context import MessageContext
from bot.outbox import release_held
from handlers.commands import STAFF, CommandError, CommandRouter

router = CommandRouter()

USAGE = "/补发 编号（多个用空格隔开）"


@router.command("补发", "resend", roles=STAFF, usage="/补发 35")
async def resend(ctx: MessageContext, args: list[str]) -> None:
    """重新发送重启时未能确认是否发出、或多次发送失败的消息"""
    numbers = []
    for arg in args[:50]:
        raw = arg.lstrip("#")
        if not raw.isdecimal() or len(raw) > 9:
            raise CommandError(f"“{arg[:10]}”不是消息编号，例如：{USAGE}")
        numbers.append(int(raw))
    if not numbers:
        raise CommandError(f"请写上消息编号，例如：{USAGE}")
    done = await release_held(ctx.session, numbers)
    skipped = sorted(set(numbers) - set(done))
    text = f"已安排补发 {len(done)} 条。" if done else "没有需要补发的消息。"
    if skipped:
        text += f"以下编号不是待核对或发送失败的消息：{'、'.join(map(str, skipped[:10]))}。"
    ctx.reply(text)  # the pipeline wakes the outbox once this is committed
