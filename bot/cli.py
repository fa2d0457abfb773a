"""The ``weizhili`` command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from bot.config import Config, ConfigError, load_config
from bot.logs import setup_logging

log = logging.getLogger("weizhili")

# Sub-commands implemented elsewhere: name -> "module:function(argv) -> int".
EXTERNAL = {
    "classify": "handlers.evaluation_cli:main_classify",
    "eval": "handlers.evaluation_cli:main_eval",
    "honor-roll": "handlers.honor_roll:main_preview",
    "export": "handlers.stats:main_export",
    "staff": "bot.web.staff_cli:main_staff",
    "backup": "models.maintenance:main_backup",
    "restore": "models.maintenance:main_restore",
}


def _config(path: str | None) -> Config:
    return load_config(path or os.environ.get("WEIZHILI_CONFIG") or None)


def warn_if_config_readable(config: Config) -> bool:
    """Warn when the config file holding the token or session secret is readable by others."""
    path = Path(config.source)
    if not path.is_file():
        return False
    secrets = [s for s in (config.wechaty.token, config.web.secret) if s]
    if not secrets or not any(s in path.read_text(encoding="utf-8") for s in secrets):
        return False
    mode = path.stat().st_mode & 0o777
    if not mode & 0o077:
        return False
    log.warning("config file with secrets is readable by others path=%s mode=%03o; "
                "run: chmod 600 %s", path, mode, path)
    return True


def cmd_run(args: argparse.Namespace) -> int:
    """Start the bot: WeChat when configured, else the simulator on 127.0.0.1."""
    config = _config(args.config)
    setup_logging(args.log_level, [config.wechaty.token, config.web.secret])
    warn_if_config_readable(config)
    from bot.app import App

    async def main() -> None:
        app = App(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await app.start()
        if app.web_port and app.channel and app.channel.name == "simulator":
            print(f"微治理已启动：在浏览器打开 http://{config.web.host}:{app.web_port}/ "
                  "使用群聊模拟器（Ctrl+C 退出）", flush=True)
        await stop.wait()
        try:
            await asyncio.wait_for(app.stop(), timeout=args.shutdown_timeout)
        except TimeoutError:
            log.error("shutdown took longer than %ss; exiting anyway", args.shutdown_timeout)

    asyncio.run(main())
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file; name every bad key."""
    try:
        config = load_config(args.path)
    except ConfigError as exc:
        print("配置有误 / configuration errors:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    print(f"OK: {config.source}: community={config.community.name} grids={len(config.grids)} "
          f"staff={len(config.staff)} categories={len(config.categories)}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Database maintenance: upgrade, copy."""
    config = _config(args.config)
    setup_logging(args.log_level)
    if args.action == "upgrade":
        from models.db import current_revision_sync, upgrade_sync

        url = args.url or config.db_url
        upgrade_sync(url)
        print(f"database at revision {current_revision_sync(url)}")
        return 0
    if args.action == "copy":
        module = importlib.import_module("models.maintenance")
        return int(module.main_copy(args.rest))
    return 2


def cmd_parse_time(args: argparse.Namespace) -> int:
    """Show what the bot understands of a Chinese time expression."""
    from handlers.timeparse import parse_time

    config = _config(args.config)
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(config.tz)
    if now.tzinfo is None:
        now = now.replace(tzinfo=config.tz)
    result = parse_time(args.text, now, tz=config.tz, dayparts=config.reminders.dayparts)
    print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Feed a chat file through the pipeline and print a summary."""
    from bot.replay import run_replay

    config = _config(args.config)
    setup_logging(args.log_level or "WARNING")
    return asyncio.run(run_replay(config, Path(args.file), replies=args.replies,
                                  labels=args.labels, database_url=args.db,
                                  resume=args.resume, delay=args.delay,
                                  sent_log=args.sent_log))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weizhili", description="微治理：社区网格群机器人")
    parser.add_argument("--config", help="config file (default: $WEIZHILI_CONFIG or built-in demo)")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING …")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="start the bot")
    run.add_argument("--shutdown-timeout", type=float, default=15.0)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path")
    check.set_defaults(func=cmd_check_config)

    db = sub.add_parser("db", help="database: upgrade | copy SRC_URL DST_URL")
    db.add_argument("action", choices=["upgrade", "copy"])
    db.add_argument("--url", help="database URL (default: from the config)")
    db.add_argument("rest", nargs=argparse.REMAINDER)
    db.set_defaults(func=cmd_db)

    pt = sub.add_parser("parse-time", help="show how a time expression is understood")
    pt.add_argument("text")
    pt.add_argument("--now", help="reference time, ISO 8601 (default: now)")
    pt.set_defaults(func=cmd_parse_time)

    replay = sub.add_parser("replay", help="replay a chat file (JSON lines)")
    replay.add_argument("file")
    replay.add_argument("--replies", help="write every reply to this file (JSON lines)")
    replay.add_argument("--labels", help="TSV with id and kind (petition/chitchat) to score")
    replay.add_argument("--db", help="database URL (default: a fresh temporary SQLite file)")
    replay.add_argument("--resume", action="store_true",
                        help="with --db: skip messages already journalled there")
    # for the crash test: slow down, and log every send as it happens
    replay.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    replay.add_argument("--sent-log", help=argparse.SUPPRESS)
    replay.set_defaults(func=cmd_replay)

    for name in EXTERNAL:
        ext = sub.add_parser(name, add_help=False, help=f"see: weizhili {name} --help")
        ext.add_argument("rest", nargs=argparse.REMAINDER)
        ext.set_defaults(func=None, external=name)
    return parser


def _split_external(argv: list[str]) -> tuple[list[str], str, list[str]] | None:
    """``[global options] NAME rest…`` for an external sub-command, passed on untouched."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 1 if "=" in argv[index] or argv[index] in ("-h", "--help") else 2
    if index < len(argv) and argv[index] in EXTERNAL:
        return argv[:index], argv[index], argv[index + 1 :]
    return None


def _run_external(name: str, rest: list[str], config: str | None) -> int:
    module_name, func_name = EXTERNAL[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(module_name.split(".")[0]):
            print(f"weizhili {name}: not available in this build", file=sys.stderr)
            return 2
        raise
    if config:
        os.environ["WEIZHILI_CONFIG"] = config
    return int(getattr(module, func_name)(rest) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        external = _split_external(argv)
        if external is not None:
            options, name, rest = external
            args = parser.parse_args(options)
            return _run_external(name, rest, args.config)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print("配置有误 / configuration errors:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
