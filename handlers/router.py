"""Message understanding: decides whether a grid-group message is a petition, praise,
a reminder request or nothing, with the reasons for it.

The rules are data (``handlers/lexicon/rules.toml`` plus an optional community
folder, see ``docs/lexicon.md``), read by :mod:`handlers.rules`. The words are found
by :mod:`handlers.matching`; this module weighs them and decides. Details (places,
praise targets, reminder times) come from :mod:`handlers.extract` and
:mod:`handlers.intent_scores`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from bot.config import DEFAULT_CATEGORIES
from bot.normalize import NormalizedText
from handlers.extract import Extractor
from handlers.intent_scores import score_praise, score_reminder
from handlers.intents import Classification, Intent
from handlers.matching import Evidence, Hit, Matcher, Trace, default_cache_dir
from handlers.rules import (
    BUILTIN_LEXICON,
    Lexicon,
    LexiconError,
    build_entries,
    load_lexicon,
)

__all__ = ["Lexicon", "LexiconError", "Router"]

logger = logging.getLogger(__name__)

DEFAULT_CATEGORY_NAMES = tuple(c.name for c in DEFAULT_CATEGORIES)
FALLBACK_CATEGORY = "其他"

_WEAK_SELF = frozenset({"我", "我们"})
_CLAUSE_SPLIT = re.compile(r"[,.!?;:，。！？；：~～…\s]+")


class Router:
    """Weighted keyword rules over a private jieba tokenizer."""

    def __init__(
        self,
        lexicon_dir: Path | None = None,
        *,
        cache_dir: Path | None = None,
        categories: Sequence[str] = DEFAULT_CATEGORY_NAMES,
    ) -> None:
        folders = [BUILTIN_LEXICON] + ([Path(lexicon_dir)] if lexicon_dir else [])
        self.lexicon = load_lexicon(folders)
        self.categories = tuple(categories)
        self.thr = {
            "petition": 4.0, "praise": 4.0, "reminder": 4.0, "addressed": 2.0,
            "topic_factor": 0.5, "topic_cap": 2.0, "question_factor": 0.55,
            "neighbour_question_factor": 0.2, "solved_penalty": 6.0,
            "handling_penalty": 4.0, "notice_penalty": 3.0, "place_support": 1.0,
        }  # fmt: skip
        self.thr.update(self.lexicon.thresholds)
        self._question_end = tuple(
            sorted(self.lexicon.words("question_end"), key=len, reverse=True)
        )
        self._extract = Extractor(self.lexicon)

        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        entries = build_entries(self.lexicon, self.categories)
        self._matcher = Matcher(self.lexicon, entries, self.cache_dir)
        self._tok = self._matcher.tok
        logger.info(
            "router ready words=%d userdicts=%d cache_dir=%s",
            len(entries), len(self.lexicon.userdicts), self.cache_dir,
        )  # fmt: skip

    # --- public API ---------------------------------------------------------------

    def tokens(self, text: str) -> list[str]:
        """Cut text with the router's own tokenizer (spaces dropped)."""
        return self._matcher.tokens(text)

    def classify(
        self, norm: NormalizedText, *, addressed: bool = False, explain: bool = False
    ) -> Classification:
        """Decide the intent of one normalised message.

        With ``explain`` the result's ``trace`` lists every rule that fired; without
        it (the pipeline) the trace stays empty and costs nothing.
        """
        text = norm.text
        if not text or text.startswith("/"):
            reason = "empty" if not text else "a command: handled elsewhere"
            return Classification(Intent.NONE, trace=[reason] if explain else [])
        ev = self._matcher.match(text, explain=explain)
        if not ev.hits:  # not one lexicon word (most chit-chat): nothing can score
            ev.trace.add("decision: none (no lexicon word)")
            return Classification(Intent.NONE, trace=ev.trace.lines)
        if not addressed and ev.has("bot_names"):
            addressed = True
            ev.trace.add("addressed: the bot is named in the text")
        return self._decide(text, ev, addressed)

    def explain(self, norm: NormalizedText, *, addressed: bool = False) -> str:
        """A readable trace of the rules that fired for one message."""
        result = self.classify(norm, addressed=addressed, explain=True)
        lines = [f"text: {norm.text}"]
        if norm.text and not norm.text.startswith("/"):
            lines.append("tokens: " + " / ".join(self.tokens(norm.text)))
        lines += [f"  {line}" for line in result.trace]
        lines.append(
            f"=> {result.intent.value} score={result.score:.2f} "
            f"confident={result.confident} category={result.category} "
            f"urgent={result.urgent} addressed={addressed}"
        )
        if result.targets:
            lines.append(f"   targets={result.targets} reason={result.reason!r}")
        if result.location:
            lines.append(f"   location={result.location}")
        return "\n".join(lines)

    # --- decision -----------------------------------------------------------------

    def _decide(self, text: str, ev: Evidence, addressed: bool) -> Classification:
        thr = self.thr
        trace = ev.trace
        petition, problem_last, topics, keywords = self._score_petition(ev)
        urgent = self._urgent(ev)
        if urgent:
            petition += 3.0
            trace.add("urgent matter: petition +3")

        best_topic = max(topics, key=topics.__getitem__) if topics else None
        petition = self._adjust_petition(text, ev, petition, problem_last, best_topic)
        praise = score_praise(text, ev, petition, thr, self._extract)
        reminder, rem_reason = score_reminder(text, ev, addressed, thr)

        scores = {
            Intent.PETITION: petition,
            Intent.PRAISE: praise.score,
            Intent.REMINDER: reminder,
        }
        if trace.on:
            trace.add(
                "scores: " + " ".join(f"{k.value}={v:.2f}" for k, v in scores.items())
            )
        intent, score = self._pick(scores, praise.for_help)
        bar = (
            thr["addressed"]
            if addressed
            else thr[intent.value]
            if intent != Intent.NONE
            else 0
        )
        if intent == Intent.NONE or score < min(thr["addressed"], bar):
            trace.add("decision: none (no intent reached the bar)")
            return Classification(Intent.NONE, score=max(score, 0.0), trace=trace.lines)

        confident = score >= bar
        trace.add(
            "decision: {} {:.2f} {} {:.2f}{}",
            intent.value, score, ">=" if confident else "<", bar,
            " (addressed)" if addressed else "",
        )  # fmt: skip
        result = Classification(
            intent, score=score, confident=confident, trace=trace.lines
        )
        if intent == Intent.PETITION:
            result.category = self._category(topics, trace)
            result.urgent = urgent
            result.keywords = keywords
            result.location = self._extract.location(text, ev)
        elif intent == Intent.PRAISE:
            result.targets, result.reason = praise.targets, praise.reason
            result.keywords = [
                h.word for h in ev.hits if h.entry.praise > 0 and not h.negated
            ]
            result.location = self._extract.location(text, ev)
        else:
            result.reason = rem_reason
            result.keywords = [h.word for h in ev.hits if h.entry.reminder > 0]
        return result

    def _pick(
        self, scores: dict[Intent, float], for_help: bool
    ) -> tuple[Intent, float]:
        petition, praise, reminder = (
            scores[Intent.PETITION], scores[Intent.PRAISE], scores[Intent.REMINDER]
        )  # fmt: skip
        # A reminder request names its own task; it wins unless the problem is louder.
        if reminder > 0 and reminder >= petition - 1.0 and reminder >= praise:
            return Intent.REMINDER, reminder
        if praise > 0 and (praise >= petition or for_help):
            return Intent.PRAISE, praise
        if petition > 0:
            return Intent.PETITION, petition
        return Intent.NONE, 0.0

    def _score_petition(
        self, ev: Evidence
    ) -> tuple[float, int, dict[str, float], list[str]]:
        score, last, keywords = 0.0, -1, []
        topics: dict[str, float] = {}
        seen: set[str] = set()
        for hit in ev.hits:
            e = hit.entry
            if hit.word in seen:
                continue  # a word counts once, however often it is repeated
            seen.add(hit.word)
            if hit.negated:
                if "solved" in e.flags:
                    score += 2.0
                    last = max(last, hit.pos)
                    ev.trace.add("petition +2.00 not solved yet: {}", hit.word)
                continue
            if e.petition:
                score += e.petition
                ev.trace.add("petition {:+.2f} {}", e.petition, hit.word)
                if e.petition > 0:
                    keywords.append(hit.word)
                if e.petition >= 1.0:
                    last = max(last, hit.pos)
            for cat, w in e.topics.items():
                topics[cat] = topics.get(cat, 0.0) + w
                if hit.word not in keywords:
                    keywords.append(hit.word)
        if score > 0 or topics:
            place = self._extract.place(ev.text)
            if place:
                score += self.thr["place_support"]
                ev.trace.add(
                    "petition {:+.2f} a place is named ({})",
                    self.thr["place_support"], place,
                )  # fmt: skip
        if topics:
            best = max(topics.values())
            support = min(best * self.thr["topic_factor"], self.thr["topic_cap"])
            score += support
            ev.trace.add("petition {:+.2f} topic support", support)
        return score, last, topics, keywords

    def _adjust_petition(
        self,
        text: str,
        ev: Evidence,
        score: float,
        problem_last: int,
        topics_best: str | None,
    ) -> float:
        if score <= 0:
            return score
        trace, thr = ev.trace, self.thr

        def follows_question(hit: Hit) -> bool:
            end = hit.pos + len(hit.word)
            return any(ch in "吗没么?不" for ch in text[end : end + 3])

        solved = [
            h for h in ev.words("solved")
            if not h.negated and not follows_question(h) and not self._after_future(ev, h)
        ]  # fmt: skip
        closed = bool(solved) and max(h.pos for h in solved) > problem_last
        if closed:
            score -= thr["solved_penalty"]
            trace.add(
                "already solved ({}): petition -{:.1f}",
                solved[-1].word, thr["solved_penalty"],
            )  # fmt: skip
        dismiss = [h for h in ev.words("dismiss") if not h.negated]
        if dismiss and not closed:
            score -= thr["solved_penalty"]
            trace.add(
                "no longer needed ({}): petition -{:.1f}",
                dismiss[0].word, thr["solved_penalty"],
            )  # fmt: skip
        handling = [h for h in ev.words("handling") if not h.negated]
        if handling:
            score -= thr["handling_penalty"]
            trace.add(
                "staff handling it ({}): petition -{:.1f}",
                handling[0].word, thr["handling_penalty"],
            )  # fmt: skip
        if ev.has("notice"):
            score -= thr["notice_penalty"]
            trace.add("a notice to residents: petition -{:.1f}", thr["notice_penalty"])

        question = self._question_kind(text, ev)
        if question:
            strong_self = any(
                h.word not in _WEAK_SELF for h in ev.words("first_person")
            )
            weak_self = bool(ev.words("first_person"))
            consult = topics_best == "办事"
            if ev.has("neighbour_question") and not strong_self:
                score *= thr["neighbour_question_factor"]
                trace.add("a question among neighbours: petition damped")
            elif consult or ev.has("request") or ev.has("complaint"):
                pass  # a consultation, a request or a complaint put as a question
            elif (question == "genuine" and not strong_self) or (
                question == "?" and not weak_self
            ):
                score *= thr["question_factor"]
                trace.add("a question, not a report: petition damped")
        return score

    def _after_future(self, ev: Evidence, hit: Hit) -> bool:
        """True when a "solved" word is wished for, not done ("赶紧修好")."""
        for h in ev.hits:
            if "future" in h.entry.flags and hit.pos - 6 <= h.pos < hit.pos:
                return True
        return False

    def _question_kind(self, text: str, ev: Evidence) -> str:
        """ "genuine" (a question word or particle), "?" (only a question mark) or ""."""
        if ev.has("question_words"):
            return "genuine"
        for clause in _CLAUSE_SPLIT.split(text):
            clause = clause.rstrip("啊呀哈哦")
            if clause and clause.endswith(self._question_end):
                return "genuine"
        return "?" if "?" in text else ""

    def _urgent(self, ev: Evidence) -> bool:
        if any(not h.negated for h in ev.words("urgent")):
            ev.trace.add("urgent: {}", ",".join(h.word for h in ev.words("urgent")))
            return True
        elderly = ev.words("urgent_elderly")
        if elderly and ev.words("elderly") and any(not h.negated for h in elderly):
            ev.trace.add("urgent: elderly person {}", elderly[0].word)
            return True
        return False

    def _category(self, topics: dict[str, float], trace: Trace) -> str:
        if not topics:
            trace.add("category: {} (no topic word)", FALLBACK_CATEGORY)
            return (
                FALLBACK_CATEGORY
                if FALLBACK_CATEGORY in self.categories
                else self.categories[-1]
            )
        # Ties go to the earlier category in the configured order.
        best = max(
            topics.items(), key=lambda kv: (kv[1], -self.categories.index(kv[0]))
        )
        if trace.on:
            ranked = sorted(topics.items(), key=lambda kv: -kv[1])
            trace.add("category: " + ", ".join(f"{k}={v:.1f}" for k, v in ranked))
        return best[0]
