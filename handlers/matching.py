"""Finding lexicon words in a message: the router's private tokenizer and matcher.

One private jieba tokenizer, built eagerly at start-up with its cache file in the
app's folder (B05, B06), cuts the normalised text; lexicon words are then looked up
character by character, longest match first, so one message costs little more than
its segmentation. Negations ("没修好", "不亮") are marked on the words they cancel.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Evidence:
    """What the matcher found in one message; the decision is made from it."""

    tokens: list[str]
    hits: list[Hit]
    text: str = ""
    trace: list[str] = field(default_factory=list)

    def has(self, flag: str) -> bool:
        """True when a word of this list is present and not negated."""
        return any(flag in h.entry.flags and not h.negated for h in self.hits)

    def words(self, flag: str) -> list[Hit]:
        """Every hit of this list, negated or not."""
        return [h for h in self.hits if flag in h.entry.flags]


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
        self._prefixes = {w[:i] for w in entries for i in range(1, len(w) + 1)}
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

    def match(self, text: str) -> Evidence:
        """Forward maximum matching of lexicon words over the text.

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

        entries, prefixes, anywhere = self.entries, self._prefixes, self._anywhere
        hits: list[Hit] = []
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
            hits.append(Hit(i, best, entries[best]))
            i += len(best)

        ev = Evidence(toks, hits, text)
        self._mark_negations(ev)
        return ev

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
                    ev.trace.append(f"negated: {hit.word} (by {prev.word})")
            prev = hit
