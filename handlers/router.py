"""Message understanding: decides whether a grid-group message is a petition, praise,
a reminder request or nothing, with the reasons for it.

The rules are data (``handlers/lexicon/rules.toml`` plus an optional community
folder, see ``docs/lexicon.md``). One private jieba tokenizer, built eagerly at
start-up with its cache file in the app's folder (B05, B06), cuts the normalised
text; keywords are then looked up token by token (longest match first), so one
message costs little more than its segmentation.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jieba
import jieba.finalseg

from bot.config import DEFAULT_CATEGORIES
from bot.normalize import NormalizedText
from handlers.intents import Classification, Intent

logger = logging.getLogger(__name__)

BUILTIN_LEXICON = Path(__file__).resolve().parent / "lexicon"
DEFAULT_CATEGORY_NAMES = tuple(c.name for c in DEFAULT_CATEGORIES)
FALLBACK_CATEGORY = "其他"

# Lists in [lists] whose words become flags on lexicon entries.
FLAG_LISTS = (
    "negation", "negation_skip", "solved", "dismiss", "handling", "future", "complaint",
    "first_person", "request", "neighbour_question", "question_words", "contrast",
    "sarcasm", "praise_negative", "praise_acts", "notice", "past", "urgent",
    "urgent_elderly", "elderly", "time_words", "praise_roles", "places", "bot_names",
)  # fmt: skip
_WEAK_SELF = frozenset({"我", "我们"})
_CLAUSE_SPLIT = re.compile(r"[,.!?;:，。！？；：~～…\s]+")
_NUM = r"[0-9一二三四五六七八九十两]+"
_LOCATION = re.compile(
    rf"(?:[A-Za-z]|{_NUM})\s*(?:号楼|号院|栋楼|栋|幢|号门|楼)"
    rf"(?:\s*的?\s*{_NUM}\s*(?:单元|门洞))?(?:\s*[0-9]{{3,4}}\s*(?:室|号|户)?)?"
    rf"|{_NUM}\s*(?:单元|门洞)(?:\s*[0-9]{{3,4}}\s*(?:室|号|户)?)?"
)
_PLACE = re.compile(
    r"(?:[A-Z][0-9]{0,2}|[\u4e00-\u9fff]{2,4})(?:省|市|县|区|镇|乡|村|街道|小区|花园|大道|路)"
)
_TIME = re.compile(
    rf"{_NUM}\s*(?:点|:[0-5][0-9]|号|日|分钟|个小时|小时|天后|周后)"
    r"|(?:周|星期|礼拜)[一二三四五六日天1-7]|[0-9]{1,2}月"
)


class LexiconError(ValueError):
    """A lexicon file is unusable; the message names the file and the key."""


@dataclass
class Lexicon:
    """The merged rules: built-in lexicon first, then each community folder."""

    thresholds: dict[str, float] = field(default_factory=dict)
    petition: dict[str, float] = field(default_factory=dict)
    praise: dict[str, float] = field(default_factory=dict)
    reminder: dict[str, float] = field(default_factory=dict)
    categories: dict[str, dict[str, float]] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    join: list[str] = field(default_factory=list)
    split: list[tuple[str, ...]] = field(default_factory=list)
    userdicts: list[Path] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)


def _weights(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise LexiconError(f"{where}: expected a table of 词 = 权重")
    out: dict[str, float] = {}
    for word, weight in table.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise LexiconError(
                f"{where}.{word}: weight must be a number, not {weight!r}"
            )
        out[str(word).strip()] = float(weight)
    return out


def _merge_rules(lex: Lexicon, path: Path) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LexiconError(f"{path}: {exc}") from exc

    for key, value in _weights(
        data.get("thresholds", {}), f"{path}: thresholds"
    ).items():
        lex.thresholds[key] = value
    for name in ("petition", "praise", "reminder"):
        getattr(lex, name).update(_weights(data.get(name, {}), f"{path}: {name}"))
    for cat, table in data.get("category", {}).items():
        lex.categories.setdefault(cat, {}).update(
            _weights(table, f"{path}: category.{cat}")
        )

    for name, words in data.get("lists", {}).items():
        if isinstance(words, str):
            words = [words]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise LexiconError(f"{path}: lists.{name}: expected a list of words")
        known = lex.lists.setdefault(name, [])
        known.extend(w for w in words if w not in known)

    seg = data.get("segmentation", {})
    lex.join.extend(str(w) for w in seg.get("join", []))
    for pair in seg.get("split", []):
        if not isinstance(pair, list) or len(pair) < 2:
            raise LexiconError(
                f"{path}: segmentation.split: {pair!r} is not a list of parts"
            )
        lex.split.append(tuple(str(p) for p in pair))

    for word in data.get("remove", {}).get("words", []):
        for table in (lex.petition, lex.praise, lex.reminder, *lex.categories.values()):
            table.pop(word, None)
        for words in lex.lists.values():
            if word in words:
                words.remove(word)
    lex.sources.append(path)


def load_lexicon(folders: Iterable[Path]) -> Lexicon:
    """Read ``rules.toml`` and ``userdict.txt`` from each folder, later ones overriding."""
    lex = Lexicon()
    for folder in folders:
        rules = folder / "rules.toml"
        if rules.is_file():
            _merge_rules(lex, rules)
        userdict = folder / "userdict.txt"
        if userdict.is_file():
            lex.userdicts.append(userdict)
    return lex


@dataclass(slots=True)
class _Entry:
    petition: float = 0.0
    praise: float = 0.0
    reminder: float = 0.0
    topics: dict[str, float] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Hit:
    pos: int  # character offset in the normalised text
    word: str
    entry: _Entry
    negated: bool = False


@dataclass
class _Evidence:
    """What the matcher found in one message; the decision is made from it."""

    tokens: list[str]
    hits: list[_Hit]
    text: str = ""
    trace: list[str] = field(default_factory=list)

    def has(self, flag: str) -> bool:
        return any(flag in h.entry.flags and not h.negated for h in self.hits)

    def words(self, flag: str) -> list[_Hit]:
        return [h for h in self.hits if flag in h.entry.flags]


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

        self._entries = self._build_entries()
        self._prefixes = {w[:i] for w in self._entries for i in range(1, len(w) + 1)}
        self._force_split: set[str] = set()
        self._name_re = self._build_name_pattern()
        self._not_places = frozenset(self.lexicon.lists.get("not_places", []))
        self._not_names = tuple(self.lexicon.lists.get("not_names", []))
        self._negation_skip_chars = frozenset(
            "".join(
                w for w in self.lexicon.lists.get("negation_skip", []) if len(w) == 1
            )
        )
        # Single characters that count even inside a longer token.
        self._anywhere = frozenset(self.lexicon.lists.get("negation", []))
        self._question_end = tuple(
            sorted(self.lexicon.lists.get("question_end", []), key=len, reverse=True)
        )

        self.cache_dir = Path(cache_dir) if cache_dir else _default_cache_dir()
        self._tok = jieba.Tokenizer()
        self._init_tokenizer()

    # --- set-up -------------------------------------------------------------------

    def _build_entries(self) -> dict[str, _Entry]:
        lex = self.lexicon
        entries: dict[str, _Entry] = {}

        def entry(word: str) -> _Entry:
            return entries.setdefault(word, _Entry())

        for word, w in lex.petition.items():
            entry(word).petition = w
        for word, w in lex.praise.items():
            entry(word).praise = w
        for word, w in lex.reminder.items():
            entry(word).reminder = w
        for cat, table in lex.categories.items():
            if cat not in self.categories:
                logger.warning("lexicon category=%s is not configured; ignored", cat)
                continue
            for word, w in table.items():
                entry(word).topics[cat] = w
        for name in FLAG_LISTS:
            for word in lex.lists.get(name, []):
                entry(word).flags.add(name)
        # An urgent matter is always a petition, whatever the tables say.
        for name in ("urgent", "urgent_elderly"):
            for word in lex.lists.get(name, []):
                e = entry(word)
                e.petition = max(e.petition, 3.0 if name == "urgent" else 2.0)
        entries.pop("", None)
        return entries

    def _build_name_pattern(self) -> re.Pattern[str]:
        lists = self.lexicon.lists
        surnames = "".join(lists.get("surnames", [])) or "王李张刘陈杨赵"
        hon = sorted(lists.get("honorifics", []), key=len, reverse=True)
        roles = sorted(lists.get("praise_roles", []), key=len, reverse=True)
        parts = [f"[小老][{surnames}]"]
        if hon:
            parts.insert(0, f"[{surnames}](?:{'|'.join(map(re.escape, hon))})")
        if roles:
            parts.append("|".join(map(re.escape, roles)))
        return re.compile("|".join(f"(?:{p})" for p in parts))

    def _init_tokenizer(self) -> None:
        """Build the private tokenizer now (never jieba's global one)."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._tok.tmp_dir = str(self.cache_dir)
        self._tok.cache_file = "jieba.weizhili.cache"
        self._tok.initialize()

        for path in self.lexicon.userdicts:
            self._tok.load_userdict(str(path))

        # suggest_freq with tune=True (B05); its HMM force-split set is global in
        # jieba, so the split words are kept here and the global set is restored.
        saved = set(jieba.finalseg.Force_Split_Words)
        try:
            for word in self.lexicon.join:
                self._tok.suggest_freq(word, tune=True)
            for parts in self.lexicon.split:
                self._tok.suggest_freq(parts, tune=True)
                self._force_split.add("".join(parts))
            self._force_split |= set(jieba.finalseg.Force_Split_Words) - saved
        finally:
            jieba.finalseg.Force_Split_Words.clear()
            jieba.finalseg.Force_Split_Words.update(saved)
        logger.info(
            "router ready words=%d userdicts=%d cache_dir=%s",
            len(self._entries), len(self.lexicon.userdicts), self.cache_dir,
        )  # fmt: skip

    # --- public API ---------------------------------------------------------------

    def tokens(self, text: str) -> list[str]:
        """Cut text with the router's own tokenizer (spaces dropped)."""
        out: list[str] = []
        for tok in self._tok.cut(text):
            if tok in self._force_split:
                out.extend(tok)
            elif not tok.isspace():
                out.append(tok)
        return out

    def classify(
        self, norm: NormalizedText, *, addressed: bool = False
    ) -> Classification:
        """Decide the intent of one normalised message."""
        text = norm.text
        if not text or text.startswith("/"):
            reason = "empty" if not text else "a command: handled elsewhere"
            return Classification(Intent.NONE, trace=[reason])
        ev = self._match(text)
        if not addressed and ev.has("bot_names"):
            addressed = True
            ev.trace.append("addressed: the bot is named in the text")
        return self._decide(text, ev, addressed)

    def explain(self, norm: NormalizedText, *, addressed: bool = False) -> str:
        """A readable trace of the rules that fired for one message."""
        result = self.classify(norm, addressed=addressed)
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

    # --- matching -----------------------------------------------------------------

    def _match(self, text: str) -> _Evidence:
        """Forward maximum matching of rule words over the text.

        A word of two or more characters matches anywhere; a single character only
        where the tokenizer cut it as a word of its own (修 in 来修, not in 修养).
        """
        toks = self.tokens(text)
        single: set[int] = set()
        offset = 0
        for tok in toks:
            offset = text.find(tok, offset)
            if offset < 0:
                break
            if len(tok) == 1:
                single.add(offset)
            offset += len(tok)

        entries, prefixes, anywhere = self._entries, self._prefixes, self._anywhere
        hits: list[_Hit] = []
        i, n = 0, len(text)
        while i < n:
            best = None
            k = i + 1
            while k <= n:
                piece = text[i:k]
                if piece not in prefixes:
                    break
                if piece in entries and (k - i > 1 or i in single or piece in anywhere):
                    best = piece
                k += 1
            if best is None:
                i += 1
                continue
            hits.append(_Hit(i, best, entries[best]))
            i += len(best)

        ev = _Evidence(toks, hits, text)
        self._mark_negations(ev)
        return ev

    def _mark_negations(self, ev: _Evidence) -> None:
        skip = self._negation_skip_chars
        prev: _Hit | None = None
        for hit in ev.hits:
            e = hit.entry
            negatable = e.petition > 0 or e.praise > 0 or e.flags & _NEGATABLE
            if (
                prev is not None
                and negatable
                and "negation" in prev.entry.flags
                and "negation" not in e.flags
                and hit.word[0] not in "不没别未无"
            ):
                gap = ev.text[prev.pos + len(prev.word) : hit.pos]
                if len(gap) <= 2 and all(ch in skip for ch in gap):
                    hit.negated = True
                    ev.trace.append(f"negated: {hit.word} (by {prev.word})")
            prev = hit

    # --- decision -----------------------------------------------------------------

    def _decide(self, text: str, ev: _Evidence, addressed: bool) -> Classification:
        thr = self.thr
        trace = ev.trace
        petition, problem_last, topics, keywords = self._score_petition(ev)
        urgent = self._urgent(ev)
        if urgent:
            petition += 3.0
            trace.append("urgent matter: petition +3")

        best_topic = max(topics, key=topics.__getitem__) if topics else None
        petition = self._adjust_petition(text, ev, petition, problem_last, best_topic)
        praise, targets, reason, for_help = self._score_praise(text, ev, petition)
        reminder, rem_reason = self._score_reminder(text, ev, addressed)

        scores = {
            Intent.PETITION: petition,
            Intent.PRAISE: praise,
            Intent.REMINDER: reminder,
        }
        trace.append(
            "scores: " + " ".join(f"{k.value}={v:.2f}" for k, v in scores.items())
        )
        intent, score = self._pick(scores, for_help)
        bar = (
            thr["addressed"]
            if addressed
            else thr[intent.value]
            if intent != Intent.NONE
            else 0
        )
        if intent == Intent.NONE or score < min(thr["addressed"], bar):
            trace.append("decision: none (no intent reached the bar)")
            return Classification(Intent.NONE, score=max(score, 0.0), trace=trace)

        confident = score >= bar
        trace.append(
            f"decision: {intent.value} {score:.2f} {'>=' if confident else '<'} {bar:.2f}"
            + (" (addressed)" if addressed else "")
        )
        result = Classification(intent, score=score, confident=confident, trace=trace)
        if intent == Intent.PETITION:
            result.category = self._category(topics, trace)
            result.urgent = urgent
            result.keywords = keywords
            result.location = self._location(text, ev)
        elif intent == Intent.PRAISE:
            result.targets, result.reason = targets, reason
            result.keywords = [
                h.word for h in ev.hits if h.entry.praise > 0 and not h.negated
            ]
            result.location = self._location(text, ev)
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
        self, ev: _Evidence
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
                    ev.trace.append(f"petition +2.00 not solved yet: {hit.word}")
                continue
            if e.petition:
                score += e.petition
                ev.trace.append(f"petition {e.petition:+.2f} {hit.word}")
                if e.petition > 0:
                    keywords.append(hit.word)
                if e.petition >= 1.0:
                    last = max(last, hit.pos)
            for cat, w in e.topics.items():
                topics[cat] = topics.get(cat, 0.0) + w
                if hit.word not in keywords:
                    keywords.append(hit.word)
        if score > 0 or topics:
            place = self._place(ev.text)
            if place:
                score += self.thr["place_support"]
                ev.trace.append(
                    f"petition {self.thr['place_support']:+.2f} a place is named ({place})"
                )
        if topics:
            best = max(topics.values())
            support = min(best * self.thr["topic_factor"], self.thr["topic_cap"])
            score += support
            ev.trace.append(f"petition {support:+.2f} topic support")
        return score, last, topics, keywords

    def _adjust_petition(
        self,
        text: str,
        ev: _Evidence,
        score: float,
        problem_last: int,
        topics_best: str | None,
    ) -> float:
        if score <= 0:
            return score
        trace, thr = ev.trace, self.thr

        def follows_question(hit: _Hit) -> bool:
            end = hit.pos + len(hit.word)
            return any(ch in "吗没么?不" for ch in text[end : end + 3])

        solved = [
            h for h in ev.words("solved")
            if not h.negated and not follows_question(h) and not self._after_future(ev, h)
        ]  # fmt: skip
        closed = bool(solved) and max(h.pos for h in solved) > problem_last
        if closed:
            score -= thr["solved_penalty"]
            trace.append(
                f"already solved ({solved[-1].word}): petition -{thr['solved_penalty']:.1f}"
            )
        dismiss = [h for h in ev.words("dismiss") if not h.negated]
        if dismiss and not closed:
            score -= thr["solved_penalty"]
            trace.append(
                f"no longer needed ({dismiss[0].word}): petition -{thr['solved_penalty']:.1f}"
            )
        handling = [h for h in ev.words("handling") if not h.negated]
        if handling:
            score -= thr["handling_penalty"]
            trace.append(
                f"staff handling it ({handling[0].word}): petition -{thr['handling_penalty']:.1f}"
            )
        if ev.has("notice"):
            score -= thr["notice_penalty"]
            trace.append(
                f"a notice to residents: petition -{thr['notice_penalty']:.1f}"
            )

        question = self._question_kind(text, ev)
        if question:
            strong_self = any(
                h.word not in _WEAK_SELF for h in ev.words("first_person")
            )
            weak_self = bool(ev.words("first_person"))
            consult = topics_best == "办事"
            if ev.has("neighbour_question") and not strong_self:
                score *= thr["neighbour_question_factor"]
                trace.append("a question among neighbours: petition damped")
            elif consult or ev.has("request") or ev.has("complaint"):
                pass  # a consultation, a request or a complaint put as a question
            elif (question == "genuine" and not strong_self) or (
                question == "?" and not weak_self
            ):
                score *= thr["question_factor"]
                trace.append("a question, not a report: petition damped")
        return score

    def _after_future(self, ev: _Evidence, hit: _Hit) -> bool:
        """True when a "solved" word is wished for, not done ("赶紧修好")."""
        for h in ev.hits:
            if "future" in h.entry.flags and hit.pos - 6 <= h.pos < hit.pos:
                return True
        return False

    def _question_kind(self, text: str, ev: _Evidence) -> str:
        """ "genuine" (a question word or particle), "?" (only a question mark) or ""."""
        if ev.has("question_words"):
            return "genuine"
        for clause in _CLAUSE_SPLIT.split(text):
            clause = clause.rstrip("啊呀哈哦")
            if clause and clause.endswith(self._question_end):
                return "genuine"
        return "?" if "?" in text else ""

    def _urgent(self, ev: _Evidence) -> bool:
        if any(not h.negated for h in ev.words("urgent")):
            ev.trace.append("urgent: " + ",".join(h.word for h in ev.words("urgent")))
            return True
        elderly = ev.words("urgent_elderly")
        if elderly and ev.words("elderly") and any(not h.negated for h in elderly):
            ev.trace.append("urgent: elderly person " + elderly[0].word)
            return True
        return False

    def _category(self, topics: dict[str, float], trace: list[str]) -> str:
        if not topics:
            trace.append(f"category: {FALLBACK_CATEGORY} (no topic word)")
            return (
                FALLBACK_CATEGORY
                if FALLBACK_CATEGORY in self.categories
                else self.categories[-1]
            )
        # Ties go to the earlier category in the configured order.
        best = max(
            topics.items(), key=lambda kv: (kv[1], -self.categories.index(kv[0]))
        )
        trace.append(
            "category: "
            + ", ".join(
                f"{k}={v:.1f}" for k, v in sorted(topics.items(), key=lambda kv: -kv[1])
            )
        )
        return best[0]

    def _place(self, text: str) -> str | None:
        """A numbered building or a named place (市, 县, 区, 镇, 村, 小区 …)."""
        m = _LOCATION.search(text)
        if m:
            return m.group(0)
        for m in _PLACE.finditer(text):
            if (
                m.group(0)[-2:] not in self._not_places
                and m.group(0)[-3:] not in self._not_places
            ):
                return m.group(0)
        return None

    def _location(self, text: str, ev: _Evidence) -> str | None:
        m = _LOCATION.search(text)
        if m:
            return re.sub(r"\s+", "", m.group(0))
        places = ev.words("places")
        return places[0].word if places else None

    # --- praise -------------------------------------------------------------------

    def _score_praise(
        self, text: str, ev: _Evidence, petition: float
    ) -> tuple[float, list[str], str, bool]:
        cues = [h for h in ev.hits if h.entry.praise > 0 and not h.negated]
        if not cues:
            return 0.0, [], "", False
        trace = ev.trace
        score = sum(h.entry.praise for h in cues)
        trace.append(
            "praise " + " ".join(f"+{h.entry.praise:.1f} {h.word}" for h in cues)
        )

        targets = self._targets(text)
        if targets:
            score += 1.5
            trace.append(f"praise +1.50 target {','.join(targets)}")
        if ev.has("praise_acts"):
            score += 1.0
            trace.append("praise +1.00 a deed is named")
        negative = ev.words("praise_negative")
        if negative:
            score -= 4.0
            trace.append(
                f"praise -4.00 thanks that are not praise ({negative[0].word})"
            )
        if petition >= self.thr["petition"] - 1 and ev.has("sarcasm"):
            trace.append("praise cancelled: thanks next to a complaint (sarcasm)")
            return 0.0, targets, "", False
        if not targets:
            # Praise needs somebody to praise; thanks to the bot or to nobody is none.
            score = min(score, self.thr["addressed"] - 0.5)
            trace.append("praise capped: nobody named")
        # A named helper, a deed and the thanks itself: the trouble told is the
        # story of the help, unless a "but" brings the complaint back after it.
        last_cue = max(h.pos for h in cues)
        contrast_after = any(h.pos > last_cue for h in ev.words("contrast"))
        for_help = bool(
            targets
            and ev.has("praise_acts")
            and score >= self.thr["praise"]
            and not contrast_after
            and not negative
        )
        if for_help:
            trace.append("praise: thanks for help received outweighs the trouble told")
        reason = self._praise_reason(text, cues, targets)
        return score, targets, reason, for_help

    def _targets(self, text: str) -> list[str]:
        found: list[str] = []
        not_names = self._not_names
        for m in self._name_re.finditer(text):
            name = m.group(0)
            if any(text.startswith(x, m.start()) for x in not_names):
                continue
            if name[0] == "谢" and text[m.start() - 1 : m.start()] in (
                "谢",
                "感",
                "多",
            ):
                continue  # the thanks itself, as in 谢谢师傅
            if name not in found and not any(name in f for f in found):
                found.append(name)
        return found[:5]

    def _praise_reason(self, text: str, cues: list[_Hit], targets: list[str]) -> str:
        reason = _LOCATION.sub(" ", text)
        for word in sorted(
            {h.word for h in cues} | set(targets), key=len, reverse=True
        ):
            reason = reason.replace(word, " ")
        reason = re.sub(r"^[\s,，。!！@的给为了向和跟]+|[\s,，。!！~～@]+$", "", reason)
        reason = re.sub(r"\s+", " ", reason)
        return reason[:80]

    # --- reminders ----------------------------------------------------------------

    def _score_reminder(
        self, text: str, ev: _Evidence, addressed: bool
    ) -> tuple[float, str]:
        cues = [h for h in ev.hits if h.entry.reminder]
        if not cues:
            return 0.0, ""
        trace = ev.trace
        score = sum(h.entry.reminder for h in cues)
        trace.append(
            "reminder " + " ".join(f"{h.entry.reminder:+.1f} {h.word}" for h in cues)
        )
        positive = [h for h in cues if h.entry.reminder > 0]
        if not positive:
            return score, ""

        cue = positive[0]
        cue_char = cue.pos
        time_pos = [h.pos for h in ev.words("time_words")]
        time_pos += [m.start() for m in _TIME.finditer(text)]
        if not time_pos:
            score -= 2.0
            trace.append("reminder -2.00 no time given")
        elif min(time_pos) < cue_char:
            score += 2.0
            trace.append("reminder +2.00 time before the request")
        else:
            score += 1.0
            trace.append("reminder +1.00 time after the request")
        if ev.has("past"):
            score -= 3.0
            trace.append("reminder -3.00 speaks of the past")
        if ev.has("notice") and not addressed:
            score -= 2.0
            trace.append("reminder -2.00 a notice, not a request")
        if not addressed and max(h.entry.reminder for h in positive) < 2.5:
            score = min(score, self.thr["reminder"] - 0.5)
            trace.append("reminder capped: only a weak cue (叫我) in a group")
        reason = text[cue_char + len(cue.word) :].strip(" ,，。!！:：")
        return score, reason[:80]


_NEGATABLE = frozenset({"solved", "urgent", "urgent_elderly", "handling"})


def _default_cache_dir() -> Path:
    """A per-user folder for jieba's cache, never the shared temp file (B06)."""
    env = os.environ.get("WEIZHILI_DATA")
    if env:
        return Path(env) / "cache"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"weizhili-{uid}" / "jieba"
