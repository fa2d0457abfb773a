"""Feature modules that add scheduled jobs or web pages hook themselves in here."""

from __future__ import annotations

import logging

from bot.context import Services

log = logging.getLogger(__name__)


def install(services: Services) -> None:
    """Register every feature's jobs and pages on the services, in one visible order."""
    services.extras.setdefault("tick_jobs", [])
    services.extras.setdefault("clock_jobs", {})
    services.extras.setdefault("clock_specs", {})
    services.extras.setdefault("catch_up_jobs", {})
    services.extras.setdefault("web_mounts", [])

    from handlers import notices

    services.extras["tick_jobs"].append(notices.chase_rollcalls)
