"""The one place that says which handlers run, and in what order."""

from __future__ import annotations

from functools import lru_cache

from handlers.commands import CommandTable
from handlers.intents import Intent


@lru_cache(maxsize=1)
def commands() -> CommandTable:
    """Every command, in the order ``/帮助`` lists them."""
    from bot.web import auth as web_auth
    from handlers import notices, reminders, stats
    from handlers.commands import general, petitions
    from handlers.commands import outbox as outbox_commands
    from handlers.commands import praise as praise_commands

    return CommandTable([general.router, petitions.router, stats.router, reminders.router,
                         notices.router, praise_commands.router, web_auth.router,
                         outbox_commands.router])


def context_handlers() -> list:  # type: ignore[type-arg]
    """Handlers for answers to the bot's own questions (回访, +1, 收到), tried before routing."""
    from handlers import followup, notices, praise
    from handlers.commands import petitions as petition_commands

    return [notices.record_answer, praise.handle_plus_one, followup.read_answer,
            petition_commands.status_question]


def intent_handlers() -> dict:  # type: ignore[type-arg]
    """What to do with a message the router understood."""
    from handlers import petition_reports, praise, reminders

    return {
        Intent.PETITION: petition_reports.handle_report,
        Intent.PRAISE: praise.handle_praise,
        Intent.REMINDER: reminders.handle_request,
    }
