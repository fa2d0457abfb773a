"""Helpers for tests that run ``weizhili`` as a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READY = "微治理已启动"


def write_config(path: Path, data_dir: Path, db_url: str, **extra: str) -> Path:
    """A config file for a simulator bot on 127.0.0.1, web port 0, fast polling."""
    sections = {
        "database": f'url = "{db_url}"',
        "web": 'host = "127.0.0.1"\nport = 0',
        "schedules": "poll_seconds = 1",
        "outbox": "room_interval_seconds = 0.0\nglobal_interval_seconds = 0.0",
        **extra,
    }
    body = [f'data_dir = "{data_dir.as_posix()}"']
    body += [f"[{name}]\n{text}" for name, text in sections.items() if text]
    path.write_text("\n\n".join(body) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def weizhili(*args: str) -> list[str]:
    """The command line that runs ``weizhili`` with this checkout's interpreter."""
    return [sys.executable, "-m", "bot.cli", *args]


@dataclass
class BotProcess:
    """A ``weizhili`` process whose stdout and stderr go to files."""

    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    lines_seen: list[str] = field(default_factory=list)

    @classmethod
    def start(
        cls, name: str, args: list[str], folder: Path, env: dict[str, str] | None = None
    ) -> BotProcess:
        out, err = folder / f"{name}.out", folder / f"{name}.err"
        proc = subprocess.Popen(
            weizhili(*args),
            cwd=ROOT,
            stdout=out.open("wb"),
            stderr=err.open("wb"),
            # scratch folders of a killed process stay inside the test's own folder
            env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(folder),
                 **(env or {})},
        )
        return cls(name, proc, out, err)

    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def wait_for(
        self, text: str, timeout: float = 30.0, *, stream: str = "any"
    ) -> bool:
        """Poll the output files until ``text`` appears; False when the wait ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = (self.stdout() if stream in ("any", "out") else "") + (
                self.stderr() if stream in ("any", "err") else ""
            )
            if text in seen:
                return True
            if self.proc.poll() is not None:
                return text in self.stdout() + self.stderr()
            time.sleep(0.05)
        return False

    def web_port(self) -> int:
        line = next(ln for ln in self.stdout().splitlines() if READY in ln)
        return int(line.split("http://127.0.0.1:")[1].split("/")[0])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)
