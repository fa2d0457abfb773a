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
            record.msg, record.args = self._redact(message), ()
        # A traceback quotes the exception's text, which may hold a secret too.
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


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
