"""Small steps the petition tests share: say something, read a petition, run a job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.app import App
from bot.clock import ManualClock
from models.tables import Followup, Petition, PetitionEvent
from tests.conftest import drain
from tests.fakes import RecordingChannel, make_message

RESIDENT = "wxid_resident_001"
NEIGHBOUR = "wxid_resident_002"
STAFF_ROOM = "staff-room"


async def say(
    app: App,
    clock: ManualClock,
    text: str,
    *,
    sender: str = RESIDENT,
    name: str = "张阿姨",
    room: str | None = "grid-01",
    mentions_bot: bool = False,
) -> str:
    """Deliver one message now and send the replies; returns the outcome."""
    assert app.pipeline is not None
    outcome = await app.pipeline.deliver(
        make_message(
            text,
            sender=sender,
            name=name,
            room=room,
            at=clock.now(),
            mentions_bot=mentions_bot,
        )
    )
    await drain(app)
    return outcome


async def petition(app: App, number: int) -> Petition:
    """The petition as stored now."""
    assert app.services is not None
    async with app.services.db.session() as session:
        row = await session.get(Petition, number)
    assert row is not None
    return row


async def events(app: App, number: int) -> list[PetitionEvent]:
    """The petition's history, oldest first."""
    assert app.services is not None
    async with app.services.db.session() as session:
        return list(
            await session.scalars(
                select(PetitionEvent)
                .where(PetitionEvent.petition_id == number)
                .order_by(PetitionEvent.id)
            )
        )


async def followups(app: App) -> list[Followup]:
    """Every follow-up row, oldest first."""
    assert app.services is not None
    async with app.services.db.session() as session:
        return list(await session.scalars(select(Followup).order_by(Followup.id)))


async def at(app: App, clock: ManualClock, when: datetime, *jobs) -> None:  # type: ignore[no-untyped-def]
    """Move the clock to ``when`` and run the given jobs, then send what they queued."""
    clock.set(when)
    for job in jobs:
        await job(app.services)
    await drain(app)


def sent_to(channel: RecordingChannel, room: str, since: int = 0) -> list[str]:
    """Texts sent to one room, from index ``since`` of everything sent."""
    return [m.text for m in channel.sent[since:] if m.room_id == room]
