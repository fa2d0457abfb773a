"""Scores for the two intents besides petitions: praise (表扬) and reminders (提醒)."""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers.extract import TIME, Extractor
from handlers.matching import Evidence


@dataclass
class PraiseScore:
    """The praise score of one message, with who is praised and why."""

    score: float = 0.0
    targets: list[str] = field(default_factory=list)
    reason: str = ""
    for_help: bool = False  # thanks for help received outweigh the trouble told


def score_praise(
    text: str, ev: Evidence, petition: float, thr: dict[str, float], ext: Extractor
) -> PraiseScore:
    """Thanks, a named person and a deed make a praise; sarcasm cancels it."""
    cues = [h for h in ev.hits if h.entry.praise > 0 and not h.negated]
    if not cues:
        return PraiseScore()
    trace = ev.trace
    score = sum(h.entry.praise for h in cues)
    if trace.on:
        trace.add("praise " + " ".join(f"+{h.entry.praise:.1f} {h.word}" for h in cues))

    targets = ext.targets(text)
    if targets:
        score += 1.5
        trace.add("praise +1.50 target {}", ",".join(targets))
    if ev.has("praise_acts"):
        score += 1.0
        trace.add("praise +1.00 a deed is named")
    negative = ev.words("praise_negative")
    if negative:
        score -= 4.0
        trace.add("praise -4.00 thanks that are not praise ({})", negative[0].word)
    if petition >= thr["petition"] - 1 and ev.has("sarcasm"):
        trace.add("praise cancelled: thanks next to a complaint (sarcasm)")
        return PraiseScore(0.0, targets)
    if not targets:
        # Praise needs somebody to praise; thanks to the bot or to nobody is none.
        score = min(score, thr["addressed"] - 0.5)
        trace.add("praise capped: nobody named")

    # A named helper, a deed and the thanks itself: the trouble told is the
    # story of the help, unless a "but" brings the complaint back after it.
    last_cue = max(h.pos for h in cues)
    contrast_after = any(h.pos > last_cue for h in ev.words("contrast"))
    for_help = bool(
        targets
        and ev.has("praise_acts")
        and score >= thr["praise"]
        and not contrast_after
        and not negative
    )
    if for_help:
        trace.add("praise: thanks for help received outweighs the trouble told")
    reason = ext.praise_reason(text, [h.word for h in cues] + targets)
    return PraiseScore(score, targets, reason, for_help)


def score_reminder(
    text: str, ev: Evidence, addressed: bool, thr: dict[str, float]
) -> tuple[float, str]:
    """A request to be reminded, with its time; the reason is the task asked for."""
    cues = [h for h in ev.hits if h.entry.reminder]
    if not cues:
        return 0.0, ""
    trace = ev.trace
    score = sum(h.entry.reminder for h in cues)
    if trace.on:
        trace.add(
            "reminder " + " ".join(f"{h.entry.reminder:+.1f} {h.word}" for h in cues)
        )
    positive = [h for h in cues if h.entry.reminder > 0]
    if not positive:
        return score, ""

    cue = positive[0]
    time_pos = [h.pos for h in ev.words("time_words")]
    time_pos += [m.start() for m in TIME.finditer(text)]
    if not time_pos:
        score -= 2.0
        trace.add("reminder -2.00 no time given")
    elif min(time_pos) < cue.pos:
        score += 2.0
        trace.add("reminder +2.00 time before the request")
    else:
        score += 1.0
        trace.add("reminder +1.00 time after the request")
    if ev.has("past"):
        score -= 3.0
        trace.add("reminder -3.00 speaks of the past")
    if ev.has("notice") and not addressed:
        score -= 2.0
        trace.add("reminder -2.00 a notice, not a request")
    if not addressed and max(h.entry.reminder for h in positive) < 2.5:
        score = min(score, thr["reminder"] - 0.5)
        trace.add("reminder capped: only a weak cue (叫我) in a group")

    reason = text[cue.pos + len(cue.word) :].strip(" ,，。!！:：")
    return score, reason[:80]
