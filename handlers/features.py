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

    from handlers import followup
    from schedules import deadlines, digests

    services.extras["tick_jobs"] += [deadlines.check_deadlines, followup.run_followups]
    schedules = services.config.schedules
    services.extras["clock_jobs"]["digest"] = digests.nightly_digest
    services.extras["clock_specs"]["digest"] = dict(hour=schedules.digest.hour,
                                                    minute=schedules.digest.minute)
    services.extras["clock_jobs"]["morning"] = digests.morning_list
    services.extras["clock_specs"]["morning"] = dict(hour=schedules.morning.hour,
                                                     minute=schedules.morning.minute)
    services.extras["catch_up_jobs"]["petition_digests"] = digests.catch_up

    from schedules import honor_roll

    honor_roll.install(services)

    from bot.web import dashboard

    services.extras["web_mounts"].append(dashboard.mount)

    from models import maintenance

    # casual messages' words leave the journal after journal_keep_days; ids stay
    services.extras["clock_jobs"]["journal_purge"] = maintenance.purge_journal
    services.extras["clock_specs"]["journal_purge"] = dict(hour=3, minute=20)
