"""Measuring the router: the counting behind ``weizhili eval`` (its command line is
:mod:`handlers.evaluation_cli`).

A labelled row is routed the way the pipeline would act on it: a message addressed
to the bot takes the router's intent; an unaddressed one only when the router is
confident. Public sets in ``../shared/data`` carry implied labels: every citizen
petition title is a petition, every casual message is none.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import CommunityConfig
from bot.normalize import normalize
from handlers.intents import Classification, Intent
from handlers.router import Router

INTENTS = tuple(i.value for i in Intent)
BOT_NAME = CommunityConfig().bot_name
BOT_ID = CommunityConfig().bot_id
# Targets of issue 7.
TARGET_MACRO_F1 = 0.92
TARGET_CATEGORY_ACCURACY = 0.85
TARGET_TRIGGER_RATE = 0.01
TARGET_PETITION_RECALL = 0.90


@dataclass(frozen=True)
class Row:
    """One labelled message."""

    id: str
    text: str
    intent: str
    category: str = ""
    split: str = ""
    addressed: bool = False
    mentions: tuple[str, ...] = ()


@dataclass
class Prediction:
    row: Row
    result: Classification

    @property
    def intent(self) -> str:
        """The intent the pipeline would act on."""
        r = self.result
        acts = r.intent is not Intent.NONE and (self.row.addressed or r.confident)
        return r.intent.value if acts else Intent.NONE.value


@dataclass
class Report:
    """Figures of one evaluation run."""

    name: str
    n: int
    per_intent: dict[str, dict[str, float]] = field(default_factory=dict)
    macro_f1: float = 0.0
    category_accuracy: float | None = None
    category_n: int = 0
    confusion: dict[str, Counter[str]] = field(default_factory=dict)
    errors: list[Prediction] = field(default_factory=list)
    trigger_rate: float = 0.0  # share of rows the bot would act on
    seconds: float = 0.0

    def recall(self, intent: str) -> float:
        return self.per_intent.get(intent, {}).get("recall", 0.0)


# --- loaders -------------------------------------------------------------------


def public_data_dir() -> Path:
    """``../shared/data`` next to the project (absent in a user's clone)."""
    env = os.environ.get("WEIZHILI_PUBLIC_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _addressed(text: str) -> tuple[str, bool]:
    """Rows of our TSV that @-mention the bot by name are addressed to it."""
    return text, ("@" + BOT_NAME) in text


def load_tsv(path: Path, split: str | None = None) -> list[Row]:
    """Our TSV format: columns id, text, intent[, category][, split]; # lines are comments."""
    rows: list[Row] = []
    header: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            missing = {"id", "text", "intent"} - set(header)
            if missing:
                raise ValueError(f"{path}: missing columns {sorted(missing)}")
            continue
        rec = dict(zip(header, cells, strict=False))
        intent = rec.get("intent", "").strip()
        if intent not in INTENTS:
            raise ValueError(f"{path}: row {rec.get('id')}: unknown intent {intent!r}")
        text, addressed = _addressed(rec.get("text", ""))
        row = Row(rec["id"], text, intent, rec.get("category", "").strip(),
                  rec.get("split", "").strip(), addressed)  # fmt: skip
        if split is None or row.split == split:
            rows.append(row)
    return rows


def _public_tsv(path: Path) -> Iterable[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    for line in lines[1:]:
        if line.strip():
            yield dict(zip(header, line.split("\t"), strict=False))


def gov_title(text: str) -> str:
    """The title of a citizen message: the text before the first '。'."""
    return text.split("。", 1)[0].strip()


def load_gov_titles(data_dir: Path) -> dict[str, list[Row]]:
    """Every ``gov_petitions_*.tsv`` row as a petition, by its title; per file."""
    out: dict[str, list[Row]] = {}
    for path in sorted(data_dir.glob("gov_petitions_*.tsv")):
        rows = [
            Row(rec["id"], gov_title(rec["text"]), "petition")
            for rec in _public_tsv(path) if rec.get("text")
        ]  # fmt: skip
        out[path.stem] = rows
    return out


def load_chitchat(data_dir: Path) -> list[Row]:
    """``chitchat_negatives.tsv``: every row is none."""
    path = data_dir / "chitchat_negatives.tsv"
    return [Row(rec["id"], rec["text"], "none") for rec in _public_tsv(path)]


def load_replay(data_dir: Path) -> list[Row]:
    """The replay day with its labels: petition → petition, chitchat → none."""
    labels = {
        rec["id"]: rec["kind"]
        for rec in _public_tsv(data_dir / "replay_real_day.labels.tsv")
    }
    rows: list[Row] = []
    for line in (
        (data_dir / "replay_real_day.jsonl").read_text(encoding="utf-8").splitlines()
    ):
        if not line.strip():
            continue
        msg = json.loads(line)
        mentions = tuple(msg.get("mentions") or ())
        kind = labels.get(msg["id"], "chitchat")
        rows.append(Row(msg["id"], msg.get("text", ""),
                        "petition" if kind == "petition" else "none",
                        addressed=BOT_ID in mentions, mentions=mentions))  # fmt: skip
    return rows


# --- evaluation ----------------------------------------------------------------


def predict(router: Router, rows: Sequence[Row]) -> list[Prediction]:
    """Route each row as the pipeline would."""
    out = []
    for row in rows:
        names = [BOT_NAME] if row.addressed else []
        out.append(
            Prediction(
                row,
                router.classify(normalize(row.text, names), addressed=row.addressed),
            )
        )
    return out


def evaluate(router: Router, rows: Sequence[Row], name: str = "") -> Report:
    """Per-intent precision/recall/F1, macro-F1, category accuracy, confusion matrix."""
    started = time.perf_counter()
    preds = predict(router, rows)
    report = Report(name, len(rows), seconds=time.perf_counter() - started)
    confusion: dict[str, Counter[str]] = {i: Counter() for i in INTENTS}
    for p in preds:
        confusion[p.row.intent][p.intent] += 1
    report.confusion = confusion

    f1s = []
    for intent in INTENTS:
        tp = confusion[intent][intent]
        gold = sum(confusion[intent].values())
        predicted = sum(confusion[g][intent] for g in INTENTS)
        if gold == 0 and predicted == 0:
            continue
        precision = tp / predicted if predicted else 0.0
        recall = tp / gold if gold else 0.0
        f1 = (
            2 * precision * recall / (precision + recall) if precision + recall else 0.0
        )
        report.per_intent[intent] = {
            "precision": precision, "recall": recall, "f1": f1,
            "support": gold, "predicted": predicted,
        }  # fmt: skip
        if gold:
            f1s.append(f1)
    report.macro_f1 = sum(f1s) / len(f1s) if f1s else 0.0

    cat = [
        p
        for p in preds
        if p.row.intent == "petition" and p.row.category and p.intent == "petition"
    ]
    report.category_n = len(cat)
    if cat:
        report.category_accuracy = sum(
            p.result.category == p.row.category for p in cat
        ) / len(cat)
    report.trigger_rate = (
        sum(p.intent != "none" for p in preds) / len(preds) if preds else 0.0
    )

    wrong = [
        p
        for p in preds
        if p.intent != p.row.intent
        or (
            p.row.category
            and p.intent == "petition"
            and p.result.category != p.row.category
        )
    ]
    # Worst first: confident wrong actions, then misses with the lowest score.
    wrong.sort(
        key=lambda p: (p.intent == p.row.intent, p.intent == "none", -p.result.score)
    )
    report.errors = wrong
    return report


def format_report(report: Report, worst: int = 10) -> str:
    """The report as the eval command prints it."""
    lines = [
        f"== {report.name}: {report.n} messages ({report.n / max(report.seconds, 1e-9):.0f} msg/s)"
    ]
    lines.append(
        f"{'intent':<10}{'prec':>7}{'recall':>8}{'F1':>7}{'gold':>6}{'pred':>6}"
    )
    for intent, m in report.per_intent.items():
        lines.append(
            f"{intent:<10}{m['precision']:>7.3f}{m['recall']:>8.3f}{m['f1']:>7.3f}"
            f"{int(m['support']):>6}{int(m['predicted']):>6}"
        )
    lines.append(f"macro-F1 {report.macro_f1:.3f}")
    if report.category_accuracy is not None:
        lines.append(
            f"category accuracy {report.category_accuracy:.3f} "
            f"(on {report.category_n} petitions routed as petitions)"
        )
    lines.append(f"acted on {report.trigger_rate:.2%} of messages")
    lines.append("confusion (rows gold, columns routed):")
    lines.append(" " * 10 + "".join(f"{i:>10}" for i in INTENTS))
    for gold in INTENTS:
        if sum(report.confusion[gold].values()):
            lines.append(
                f"{gold:<10}"
                + "".join(f"{report.confusion[gold][i]:>10}" for i in INTENTS)
            )
    if worst and report.errors:
        lines.append(
            f"worst misrouted ({min(worst, len(report.errors))} of {len(report.errors)}):"
        )
        for p in report.errors[:worst]:
            r = p.result
            gold = p.row.intent + (f"/{p.row.category}" if p.row.category else "")
            got = p.intent + (f"/{r.category}" if p.intent == "petition" else "")
            lines.append(
                f"  {p.row.id} gold={gold} got={got} score={r.score:.1f} "
                f"kw={','.join(r.keywords[:5])} | {p.row.text[:60]}"
            )
    return "\n".join(lines)


@dataclass
class PublicFigures:
    """The issue's public-data targets, measured."""

    chitchat_trigger_rate: float
    chitchat_n: int
    gov_recall: dict[str, float]
    gov_recall_all: float
    gov_n: int
    replay_petition_recall: float
    replay_trigger_rate: float
    replay_n: int
    failing: list[str] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)


def public_figures(router: Router, data_dir: Path) -> PublicFigures:
    """Chit-chat trigger rate, petition recall on titles, and the replay day."""
    chit = evaluate(
        router, load_chitchat(data_dir), "chitchat_negatives.tsv (all none)"
    )
    gov = {name: evaluate(router, rows, f"{name} titles (all petitions)")
           for name, rows in load_gov_titles(data_dir).items()}  # fmt: skip
    gov_n = sum(r.n for r in gov.values())
    gov_all = (
        sum(r.recall("petition") * r.n for r in gov.values()) / gov_n if gov_n else 0.0
    )
    replay_rows = load_replay(data_dir)
    replay = evaluate(router, replay_rows, "replay_real_day.jsonl")
    casual = [row for row in replay_rows if row.intent == "none"]
    replay_chit = evaluate(router, casual, "replay casual") if casual else None

    figures = PublicFigures(
        chitchat_trigger_rate=chit.trigger_rate, chitchat_n=chit.n,
        gov_recall={k: v.recall("petition") for k, v in gov.items()},
        gov_recall_all=gov_all, gov_n=gov_n,
        replay_petition_recall=replay.recall("petition"),
        replay_trigger_rate=replay_chit.trigger_rate if replay_chit else 0.0,
        replay_n=replay.n, reports=[chit, *gov.values(), replay],
    )  # fmt: skip
    if figures.chitchat_trigger_rate > TARGET_TRIGGER_RATE:
        figures.failing.append("chitchat trigger rate")
    if figures.gov_recall_all < TARGET_PETITION_RECALL:
        figures.failing.append("gov petition recall")
    if figures.replay_petition_recall < TARGET_PETITION_RECALL:
        figures.failing.append("replay petition recall")
    if figures.replay_trigger_rate > TARGET_TRIGGER_RATE:
        figures.failing.append("replay chitchat trigger rate")
    return figures


def format_public(fig: PublicFigures) -> str:
    """The public-data figures against the issue's targets."""

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    lines = ["== public data (../shared/data)"]
    lines.append(
        f"chitchat_negatives: {fig.chitchat_trigger_rate:.2%} of {fig.chitchat_n} trigger "
        f"(target <= {TARGET_TRIGGER_RATE:.0%}) {mark(fig.chitchat_trigger_rate <= TARGET_TRIGGER_RATE)}"
    )
    for name, recall in fig.gov_recall.items():
        lines.append(f"{name}: petition recall {recall:.2%}")
    lines.append(
        f"gov titles, all {fig.gov_n}: petition recall {fig.gov_recall_all:.2%} "
        f"(target >= {TARGET_PETITION_RECALL:.0%}) {mark(fig.gov_recall_all >= TARGET_PETITION_RECALL)}"
    )
    lines.append(
        f"replay day ({fig.replay_n}): petition recall {fig.replay_petition_recall:.2%} "
        f"{mark(fig.replay_petition_recall >= TARGET_PETITION_RECALL)}, casual trigger rate "
        f"{fig.replay_trigger_rate:.2%} {mark(fig.replay_trigger_rate <= TARGET_TRIGGER_RATE)}"
    )
    return "\n".join(lines)
