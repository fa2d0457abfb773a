"""Routing rules as data: reading and checking ``rules.toml`` and ``userdict.txt``.

The built-in lexicon lives in ``handlers/lexicon/``; a community folder with the same
layout adds words, overrides weights or removes built-in words (``docs/lexicon.md``).
The merged tables are turned into one entry per word for the matcher.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BUILTIN_LEXICON = Path(__file__).resolve().parent / "lexicon"
MAX_WEIGHT = 100  # far above any rule's use; a typo like 1e308 is refused

# Lists in [lists] whose words become flags on lexicon entries.
FLAG_LISTS = (
    "negation", "negation_skip", "solved", "dismiss", "handling", "future", "complaint",
    "first_person", "request", "neighbour_question", "question_words", "contrast",
    "sarcasm", "praise_negative", "praise_acts", "notice", "past", "urgent",
    "urgent_elderly", "elderly", "time_words", "praise_roles", "places", "bot_names",
)  # fmt: skip


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

    def words(self, name: str) -> list[str]:
        """The words of one [lists] entry (empty when the list is absent)."""
        return self.lists.get(name, [])


@dataclass(slots=True)
class Entry:
    """What one lexicon word contributes wherever it is found."""

    petition: float = 0.0
    praise: float = 0.0
    reminder: float = 0.0
    topics: dict[str, float] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


def _weights(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise LexiconError(f"{where}: expected a table of 词 = 权重")
    out: dict[str, float] = {}
    for word, weight in table.items():
        if not str(word).strip():
            raise LexiconError(f"{where}: an empty word {word!r} would match any text")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise LexiconError(
                f"{where}.{word}: weight must be a number, not {weight!r}"
            )
        if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
            raise LexiconError(
                f"{where}.{word}: weight must be between -{MAX_WEIGHT} and {MAX_WEIGHT}"
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
        if not all(w.strip() for w in words):
            raise LexiconError(f"{path}: lists.{name}: an empty word would match any text")
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


def build_entries(lex: Lexicon, categories: Sequence[str]) -> dict[str, Entry]:
    """One entry per word: its weights per intent, its topics and its list flags."""
    entries: dict[str, Entry] = {}

    def entry(word: str) -> Entry:
        return entries.setdefault(word, Entry())

    for word, w in lex.petition.items():
        entry(word).petition = w
    for word, w in lex.praise.items():
        entry(word).praise = w
    for word, w in lex.reminder.items():
        entry(word).reminder = w
    for cat, table in lex.categories.items():
        if cat not in categories:
            logger.warning("lexicon category=%s is not configured; ignored", cat)
            continue
        for word, w in table.items():
            entry(word).topics[cat] = w
    for name in FLAG_LISTS:
        for word in lex.words(name):
            entry(word).flags.add(name)

    # An urgent matter is always a petition, whatever the tables say.
    for name in ("urgent", "urgent_elderly"):
        for word in lex.words(name):
            e = entry(word)
            e.petition = max(e.petition, 3.0 if name == "urgent" else 2.0)
    entries.pop("", None)
    return entries
