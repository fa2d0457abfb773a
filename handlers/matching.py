"""Finding lexicon words in a message: the router's private tokenizer and matcher.

One private jieba tokenizer, built eagerly at start-up with its cache file in the
app's folder (B05, B06), cuts the normalised text; lexicon words are then looked up
with one Aho-Corasick automaton (leftmost, then longest), and the text is cut only
when a single-character word needs the cut's judgement. Negations ("没修好", "不亮") are marked on the words they cancel.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick_rs
import jieba
import jieba.finalseg

from handlers.rules import Entry, Lexicon

logger = logging.getLogger(__name__)

# jieba announces every dictionary build on stderr at DEBUG; the router's own
# tokenizer logs its readiness itself, so jieba's chatter stays below WARNING.
jieba.setLogLevel(logging.WARNING)

# Flags that a negation cancels, besides positive petition and praise weights.
_NEGATABLE = frozenset({"solved", "urgent", "urgent_elderly", "handling"})
_NEGATION_HEADS = "不没别未无"


@dataclass(slots=True)
class Hit:
    """One lexicon word found in the text."""

    pos: int  # character offset in the normalised text
    word: str
    entry: Entry
    negated: bool = False


class Trace:
    """The reasons behind one decision, written down only when someone will read them.

    ``add`` takes a ``str.format`` pattern and its values and formats them only when
    the trace is on (``Router.explain``); routing a message in the pipeline keeps it
    off and pays for no strings.
    """

    __slots__ = ("lines", "on")

    def __init__(self, on: bool = False) -> None:
        self.on = on
        self.lines: list[str] = []

    def add(self, pattern: str, *values: object) -> None:
        if self.on:
            self.lines.append(pattern.format(*values) if values else pattern)


_NO_HITS: tuple[Hit, ...] = ()


@dataclass
class Evidence:
    """What the matcher found in one message; the decision is made from it."""

    hits: list[Hit]
    text: str = ""
    trace: Trace = field(default_factory=Trace)
    by_flag: dict[str, list[Hit]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for hit in self.hits:
            for flag in hit.entry.flags:
                self.by_flag.setdefault(flag, []).append(hit)

    def has(self, flag: str) -> bool:
        """True when a word of this list is present and not negated."""
        return any(not h.negated for h in self.by_flag.get(flag, _NO_HITS))

    def words(self, flag: str) -> list[Hit]:
        """Every hit of this list, negated or not, in text order."""
        return list(self.by_flag.get(flag, _NO_HITS))


def default_cache_dir() -> Path:
    """A per-user folder for jieba's cache, never the shared temp file (B06)."""
    env = os.environ.get("WEIZHILI_DATA")
    if env:
        return Path(env) / "cache"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"weizhili-{uid}" / "jieba"


class Matcher:
    """The private tokenizer and the longest-match lookup of lexicon words."""

    def __init__(
        self, lexicon: Lexicon, entries: dict[str, Entry], cache_dir: Path
    ) -> None:
        self.entries = entries
        self.cache_dir = cache_dir
        # Every lexicon word in one automaton; at each place in a text the longest
        # word starting there wins, as a reader would take 灯坏了 over 灯.
        self._words = [w for w in entries if w]
        self._automaton = ahocorasick_rs.AhoCorasick(
            self._words, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest
        )
        # Single characters that count even inside a longer token.
        self._anywhere = frozenset(lexicon.words("negation"))
        self._negation_skip = frozenset(
            "".join(w for w in lexicon.words("negation_skip") if len(w) == 1)
        )
        self._force_split: set[str] = set()
        self.tok = jieba.Tokenizer()
        self._init_tokenizer(lexicon)

    def _init_tokenizer(self, lexicon: Lexicon) -> None:
        """Build the private tokenizer now (never jieba's global one)."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.tok.tmp_dir = str(self.cache_dir)
        self.tok.cache_file = "jieba.weizhili.cache"
        self.tok.initialize()

        for path in lexicon.userdicts:
            self.tok.load_userdict(str(path))

        # suggest_freq with tune=True (B05); its HMM force-split set is global in
        # jieba, so the split words are kept here and the global set is restored.
        saved = set(jieba.finalseg.Force_Split_Words)
        try:
            for word in lexicon.join:
                self.tok.suggest_freq(word, tune=True)
            for parts in lexicon.split:
                self.tok.suggest_freq(parts, tune=True)
                self._force_split.add("".join(parts))
            self._force_split |= set(jieba.finalseg.Force_Split_Words) - saved
        finally:
            jieba.finalseg.Force_Split_Words.clear()
            jieba.finalseg.Force_Split_Words.update(saved)

    def tokens(self, text: str) -> list[str]:
        """Cut text with the router's own tokenizer (spaces dropped)."""
        out: list[str] = []
        for tok in self.tok.cut(text):
            if tok in self._force_split:
                out.extend(tok)
            elif not tok.isspace():
                out.append(tok)
        return out

    def match(self, text: str, *, explain: bool = False) -> Evidence:
        """Leftmost-longest matching of lexicon words over the text.

        A word of two or more characters matches anywhere; a single character only
        where the tokenizer cut it as a word of its own (修 in 来修, not in 修养),
        except negations, which count anywhere. The text is cut only when such a
        single character is found (in the shared chit-chat sample, four lines in ten
        need no cut).
        """
        entries, anywhere = self.entries, self._anywhere
        words = self._words
        single: set[int] | None = None
        hits: list[Hit] = []
        for index, start, end in self._automaton.find_matches_as_indexes(text):
            word = words[index]
            if end - start == 1 and word not in anywhere:
                if single is None:
                    single = self._single_positions(text)
                if start not in single:
                    continue
            hits.append(Hit(start, word, entries[word]))
        ev = Evidence(hits, text, Trace(explain))
        self._mark_negations(ev)
        return ev

    def _single_positions(self, text: str) -> set[int]:
        """Offsets of the characters the tokenizer cuts as words of their own."""
        single: set[int] = set()
        offset = 0
        for tok in self.tokens(text):
            offset = text.find(tok, offset)
            if offset < 0:
                break
            if len(tok) == 1:
                single.add(offset)
            offset += len(tok)
        return single

    def _mark_negations(self, ev: Evidence) -> None:
        skip = self._negation_skip
        prev: Hit | None = None
        for hit in ev.hits:
            e = hit.entry
            negatable = e.petition > 0 or e.praise > 0 or e.flags & _NEGATABLE
            if (
                prev is not None
                and negatable
                and "negation" in prev.entry.flags
                and "negation" not in e.flags
                and hit.word[0] not in _NEGATION_HEADS
            ):
                gap = ev.text[prev.pos + len(prev.word) : hit.pos]
                if len(gap) <= 2 and all(ch in skip for ch in gap):
                    hit.negated = True
                    ev.trace.add("negated: {} (by {})", hit.word, prev.word)
            prev = hit
