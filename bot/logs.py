"""Logging for operators: English, ids as key=value, residents' words only at DEBUG."""

from __future__ import annotations

import logging
import os


class _RedactFilter(logging.Filter):
    """Drops any secret that would otherwise reach a log line."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, ()
        return True


def setup_logging(level: str | None = None, secrets: list[str] | None = None) -> None:
    """Configure the root logger once for the command line."""
    level = (level or os.environ.get("WEIZHILI_LOG_LEVEL", "INFO")).upper()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactFilter(secrets or []))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("jieba", "apscheduler", "aiohttp.access", "alembic", "grpclib",
                  "wechaty", "wechaty_puppet", "wechaty_puppet_service", "PuppetService"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
