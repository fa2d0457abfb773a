"""The one place that says which handlers run, and in what order."""

from __future__ import annotations

from functools import lru_cache

from handlers.commands import CommandTable
from handlers.intents import Intent


@lru_cache(maxsize=1)
def commands() -> CommandTable:
    """Every command, in the order ``/帮助`` lists them."""
    from handlers import reminders
    from handlers.commands import general, petitions

    return CommandTable([general.router, petitions.router, reminders.router])


def context_handlers() -> list:  # type: ignore[type-arg]
    """Handlers for answers to the bot's own questions (回访, +1, 收到), tried before routing."""
    return []


def intent_handlers() -> dict:  # type: ignore[type-arg]
    """What to do with a message the router understood."""
    from handlers import petitions, praise, reminders

    return {
        Intent.PETITION: petitions.handle_report,
        Intent.PRAISE: praise.handle_praise,
        Intent.REMINDER: reminders.handle_request,
    }
