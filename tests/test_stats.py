"""The three rates on a hand-built history, grouped and filtered; the CSV export."""

from __future__ import annotations

import asyncio
import csv
from datetime import datetime

import pytest

from bot.config import demo_config
from handlers.stats import RateRow, compute_rates, format_rates, main_export, percent
from models.db import Database, upgrade
from models.tables import Followup, Petition, PetitionEvent
from tests.conftest import database_url_for, local

SINCE = local(2026, 11, 30, 0, 0)  # Monday
UNTIL = local(2026, 12, 4, 15, 0)  # Friday afternoon: "now"


def make(
    number: int,
    grid: str,
    category: str,
    party: str,
    created: datetime,
    response_due: datetime,
    resolve_due: datetime,
    *,
    accepted: datetime | None = None,
    resolved: datetime | None = None,
    status: str = "reported",
    reopens: int = 0,
) -> Petition:
    return Petition(
        id=number,
        grid_id=grid,
        room_id=grid,
        reporter_id=f"wxid_r{number}",
        text=f"诉求{number}",
        category=category,
        party=party,
        status=status,
        created_at=created,
        updated_at=resolved or accepted or created,
        response_due=response_due,
        resolve_due=resolve_due,
        accepted_at=accepted,
        resolved_at=resolved,
        reopen_count=reopens,
        followers=[],
        keywords=[],
    )


def answer(
    number: int,
    contacted: bool | None,
    solved: bool | None,
    satisfied: bool | None,
    status: str = "answered",
) -> Followup:
    return Followup(
        petition_id=number,
        member_id=f"wxid_r{number}",
        room_id="grid-01",
        due_at=UNTIL,
        status=status,
        contacted=contacted,
        solved=solved,
        satisfied=satisfied,
    )


def history() -> list[Petition]:
    """Fresh rows each time: ORM objects belong to one session."""
    return [
        # 1: responded in 30 min, resolved in 6 h, closed, answered yes/yes/yes
        make(
            1,
            "grid-01",
            "维修",
            "物业",
            local(2026, 12, 1, 9, 0),
            local(2026, 12, 1, 11, 0),
            local(2026, 12, 1, 21, 0),
            accepted=local(2026, 12, 1, 9, 30),
            resolved=local(2026, 12, 1, 15, 0),
            status="closed",
        ),
        # 2: responded late (3 h), resolved the next day (24 h), reopened once
        make(
            2,
            "grid-02",
            "纠纷",
            "居委会",
            local(2026, 12, 2, 10, 0),
            local(2026, 12, 2, 12, 0),
            local(2026, 12, 2, 21, 0),
            accepted=local(2026, 12, 2, 13, 0),
            resolved=local(2026, 12, 3, 10, 0),
            status="resolved",
            reopens=1,
        ),
        # 3: never responded, both deadlines passed
        make(
            3,
            "grid-01",
            "维修",
            "物业",
            local(2026, 12, 3, 16, 0),
            local(2026, 12, 4, 9, 30),
            local(2026, 12, 4, 9, 30),
        ),
        # 4: brand new, nothing due yet
        make(
            4,
            "grid-01",
            "维修",
            "物业",
            local(2026, 12, 4, 14, 0),
            local(2026, 12, 4, 16, 0),
            local(2026, 12, 4, 21, 0),
        ),
        # 5: withdrawn: not counted
        make(
            5,
            "grid-02",
            "维修",
            "物业",
            local(2026, 12, 2, 8, 0),
            local(2026, 12, 2, 10, 0),
            local(2026, 12, 2, 21, 0),
            status="withdrawn",
        ),
        # 6: last week: outside the period
        make(
            6,
            "grid-01",
            "环境",
            "物业",
            local(2026, 11, 29, 9, 0),
            local(2026, 11, 30, 10, 30),
            local(2026, 11, 29, 21, 0),
            accepted=local(2026, 11, 29, 9, 5),
            resolved=local(2026, 11, 29, 9, 35),
            status="closed",
        ),
        # 7: responded in 10 min, resolved in 1 h, answered yes/yes/no
        make(
            7,
            "grid-01",
            "维修",
            "物业",
            local(2026, 12, 2, 9, 0),
            local(2026, 12, 2, 11, 0),
            local(2026, 12, 2, 21, 0),
            accepted=local(2026, 12, 2, 9, 10),
            resolved=local(2026, 12, 2, 10, 0),
            status="resolved",
        ),
    ]


def answers() -> list[Followup]:
    return [
        answer(1, True, True, True),
        answer(2, None, False, False),
        answer(2, None, None, None, status="unanswered"),
        answer(7, True, True, False),
        answer(6, False, False, False),
    ]


@pytest.fixture
async def db(tmp_path):  # type: ignore[no-untyped-def]
    url = database_url_for(tmp_path)
    await upgrade(url)
    database = Database(url)
    async with database.session() as session:
        session.add_all(history())
        await session.flush()
        session.add_all(answers())
        session.add(
            PetitionEvent(
                petition_id=2,
                at=local(2026, 12, 3, 10, 0),
                actor_id="wxid_jwh_li",
                action="resolve",
                from_status="reopened",
                to_status="resolved",
                note="已调解，联系电话13812345678",
            )
        )
    try:
        yield database
    finally:
        await database.close()


async def rates(db, **kwargs) -> list[RateRow]:  # type: ignore[no-untyped-def]
    async with db.session() as session:
        return await compute_rates(
            session, demo_config(), since=SINCE, until=UNTIL, **kwargs
        )


async def test_rates_of_the_whole_community(db):
    (row,) = await rates(db)
    assert row.key == "全部"
    assert (row.petitions, row.responded, row.resolved, row.reopen_count) == (
        5,
        3,
        3,
        1,
    )
    # on time: 1 and 7 of {1, 2, 7 responded; 3 due and not responded}
    assert row.on_time_response_rate == 2 / 4
    # same day: 1 and 7 of {1, 2, 7 resolved; 3 due}; 4 is not due yet
    assert row.same_day_rate == 2 / 4
    assert row.avg_response_minutes == pytest.approx((30 + 180 + 10) / 3, abs=0.01)
    assert row.avg_resolve_minutes == pytest.approx(
        (6 * 60 + 24 * 60 + 60) / 3, abs=0.01
    )
    # follow-ups of 1, 2, 7: contacted said by 1 and 7 (both yes)
    assert row.response_rate == 2 / 2
    assert row.solve_rate == 2 / 3
    assert row.satisfaction_rate == 1 / 3
    assert (row.followups_answered, row.followups_unanswered) == (3, 1)


async def test_rates_per_grid_and_for_one_grid(db):
    by_grid = {r.key: r for r in await rates(db, group_by="grid")}
    assert set(by_grid) == {"grid-01", "grid-02"}
    one, two = by_grid["grid-01"], by_grid["grid-02"]
    assert (one.petitions, two.petitions) == (4, 1)
    assert one.on_time_response_rate == 2 / 3  # 1 and 7 of {1, 7, 3}
    assert two.on_time_response_rate == 0 / 1
    assert two.satisfaction_rate == 0.0 and two.response_rate is None
    assert two.reopen_count == 1

    (only,) = await rates(db, grid_id="grid-02")
    assert only == RateRow(**{**two.__dict__, "key": "全部"})


async def test_rates_per_party_category_and_week(db):
    parties = {r.key: r.petitions for r in await rates(db, group_by="party")}
    assert parties == {"物业": 4, "居委会": 1}
    categories = {r.key: r.petitions for r in await rates(db, group_by="category")}
    assert categories == {"维修": 4, "纠纷": 1}
    async with db.session() as session:
        weeks = await compute_rates(
            session,
            demo_config(),
            since=local(2026, 11, 23, 0, 0),
            until=UNTIL,
            group_by="week",
        )
    assert [(w.key, w.petitions) for w in weeks] == [
        ("2026-11-23", 1),
        ("2026-11-30", 5),
    ]
    assert weeks[0].satisfaction_rate == 0.0


async def test_empty_period_has_one_row_with_no_rates(db):
    async with db.session() as session:
        (row,) = await compute_rates(
            session,
            demo_config(),
            since=local(2025, 1, 1, 0, 0),
            until=local(2025, 1, 8, 0, 0),
        )
    assert row.petitions == 0 and row.satisfaction_rate is None
    assert "满意率 —" in format_rates(row, "统计")


async def test_bad_grouping_is_refused(db):
    with pytest.raises(ValueError, match="group_by"):
        await rates(db, group_by="colour")


def test_percent_format():
    assert (percent(2 / 3), percent(1.0), percent(None)) == ("66.7%", "100.0%", "—")


def test_export_writes_open311_like_csv(tmp_path, monkeypatch):
    url = database_url_for(tmp_path)

    async def build() -> None:
        await upgrade(url)
        database = Database(url)
        async with database.session() as session:
            session.add_all(history())
            await session.flush()
            session.add(
                PetitionEvent(
                    petition_id=2,
                    at=local(2026, 12, 3, 10, 0),
                    actor_id="wxid_jwh_li",
                    action="resolve",
                    from_status="reopened",
                    to_status="resolved",
                    note="已调解，联系电话13812345678",
                )
            )
        await database.close()

    asyncio.run(build())
    monkeypatch.setenv("WEIZHILI_DATABASE_URL", url)
    monkeypatch.delenv("WEIZHILI_CONFIG", raising=False)
    out = tmp_path / "petitions.csv"
    assert main_export(["petitions", "--since", "2026-12-01", "--out", str(out)]) == 0

    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["service_request_id"] for r in rows] == ["1", "2", "3", "4", "5", "7"]
    assert list(rows[0]) == [
        "service_request_id",
        "category",
        "party",
        "requested_datetime",
        "expected_datetime",
        "updated_datetime",
        "status",
        "status_notes",
        "grid",
    ]
    second = rows[1]
    assert (second["category"], second["party"], second["grid"]) == (
        "纠纷",
        "居委会",
        "grid-02",
    )
    assert second["requested_datetime"] == "2026-12-02T10:00:00+08:00"
    assert second["expected_datetime"] == "2026-12-02T21:00:00+08:00"
    assert second["status"] == "closed"
    assert second["status_notes"].startswith("已办结：已调解")
    assert "13812345678" not in second["status_notes"]
    assert rows[2]["status"] == "open" and rows[2]["status_notes"] == "待受理"


def test_export_without_a_database_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(
        "WEIZHILI_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/none.db"
    )
    assert main_export(["petitions", "--since", "2026-12-01"]) == 2
    assert "no database" in capsys.readouterr().err
