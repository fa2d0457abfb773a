"""Reading request bodies under an explicit size limit, as JSON or as a form."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

MAX_BODY_BYTES = 64 * 1024


class TooLargeError(web.HTTPClientError):
    """The body is over :data:`MAX_BODY_BYTES`: 413."""

    status_code = 413

    def __init__(self) -> None:
        super().__init__(text=f"请求内容太大（最多 {MAX_BODY_BYTES // 1024} KB）。")


class UnsupportedMediaError(web.HTTPClientError):
    """A body in a format we do not read: 415."""

    status_code = 415

    def __init__(self, expected: str) -> None:
        super().__init__(text=f"请求内容格式不对，应当是 {expected}。")


async def read_body(request: web.Request) -> bytes:
    """The whole body, refusing more than :data:`MAX_BODY_BYTES` even without a length."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise TooLargeError()
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(16 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request) -> dict[str, Any]:
    """A JSON object body; an empty body is ``{}``."""
    raw = await read_body(request)
    if not raw.strip():
        return {}
    if request.content_type != "application/json":
        raise UnsupportedMediaError("application/json")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(text="请求内容不是合法的 JSON。") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="请求内容应当是一个 JSON 对象。")
    return data


class Form:
    """A parsed ``application/x-www-form-urlencoded`` body."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, key: str, default: str = "") -> str:
        values = self.fields.get(key)
        return values[0] if values else default

    def getall(self, key: str) -> list[str]:
        return list(self.fields.get(key, []))

    def as_dict(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.fields.items() if v}


async def read_form(request: web.Request) -> Form:
    raw = await read_body(request)
    if raw and request.content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaError("表单（application/x-www-form-urlencoded）")
    try:
        text = raw.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=200,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(text="表单内容无法读取。") from None
    return Form(fields)
