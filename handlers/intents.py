"""What the router decides about a message, shared by the router and the handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Intent(StrEnum):
    PETITION = "petition"
    PRAISE = "praise"
    REMINDER = "reminder"
    NONE = "none"


@dataclass
class Classification:
    """The router's verdict on one normalised message, with the reasons for it."""

    intent: Intent
    score: float = 0.0
    confident: bool = False
    category: str | None = None
    urgent: bool = False
    targets: list[str] = field(default_factory=list)  # praise targets as written
    reason: str = ""  # praise reason / reminder content
    keywords: list[str] = field(default_factory=list)
    location: str | None = None  # e.g. "3号楼2单元"
    trace: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "intent": self.intent.value,
            "score": round(self.score, 3),
            "confident": self.confident,
            "category": self.category,
            "urgent": self.urgent,
            "targets": list(self.targets),
            "reason": self.reason,
            "keywords": list(self.keywords),
            "location": self.location,
        }
