"""The honor roll as a picture: a PNG card drawn with Pillow in a CJK font.

The font is the file named by ``WEIZHILI_FONT``, else the first CJK font found in the
data folder's ``fonts/``, the usual system paths (Debian's fonts-wqy-microhei,
fonts-noto-cjk; macOS; Windows) or ``fc-list :lang=zh``. With none, no picture is
drawn and one warning is logged: the text roll goes out alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from handlers.honor_roll import Roll

log = logging.getLogger(__name__)

FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)
PROBE = "光荣榜"

WIDTH = 1080
MARGIN = 64
HEADER = 300
ROW = 166
RED = (176, 30, 35)
DARK_RED = (140, 20, 28)
GOLD = (246, 204, 110)
PAPER = (255, 250, 240)
INK = (51, 38, 30)
GREY = (118, 104, 92)
LINE = (232, 214, 190)
MEDALS = ((230, 172, 40), (168, 176, 186), (196, 128, 72))


@dataclass
class Card:
    """A drawn card: where it is, its size, and the box of each name (for checks)."""

    path: Path
    size: tuple[int, int]
    name_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)


_warned = False


def find_font(data_dir: Path | None = None) -> Path | None:
    """The CJK font to draw with, or None."""
    candidates: list[Path] = []
    if os.environ.get("WEIZHILI_FONT"):
        candidates.append(Path(os.environ["WEIZHILI_FONT"]))
    if data_dir is not None and (data_dir / "fonts").is_dir():
        candidates += sorted(
            p
            for p in (data_dir / "fonts").iterdir()
            if p.suffix.lower() in (".ttf", ".ttc", ".otf")
        )
    candidates += [Path(p) for p in FONT_PATHS]
    for path in candidates:
        if path.is_file() and _draws_cjk(str(path)):
            return path
    found = _fc_list()
    return found if found and _draws_cjk(str(found)) else None


@lru_cache(maxsize=8)
def _draws_cjk(path: str) -> bool:
    try:
        font = ImageFont.truetype(path, 32)
    except OSError:
        return False
    box = font.getbbox(PROBE)
    return box[2] - box[0] > 60


def _fc_list() -> Path | None:
    if shutil.which("fc-list") is None:
        return None
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(
        line.split(":")[0].strip() for line in out.splitlines() if line.strip()
    )
    return Path(files[0]) if files else None


def render_card(
    roll: Roll,
    path: Path,
    *,
    font_path: Path | None = None,
    data_dir: Path | None = None,
) -> Card | None:
    """Draw the roll to ``path`` as a PNG; None (and one warning) when no CJK font."""
    global _warned
    font_file = font_path or find_font(data_dir)
    if font_file is None:
        if not _warned:
            log.warning(
                "no CJK font found; honor roll goes out as text only "
                "(install fonts-wqy-microhei or set WEIZHILI_FONT)"
            )
            _warned = True
        return None
    return _Painter(roll, str(font_file)).paint(path)


class _Painter:
    def __init__(self, roll: Roll, font_file: str) -> None:
        self.roll = roll
        self.font_file = font_file

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(self.font_file, size)

    def paint(self, path: Path) -> Card:
        roll = self.roll
        staff_lines = self._staff_lines()
        height = (
            HEADER
            + 40
            + max(len(roll.entries), 1) * ROW
            + 30
            + (70 + 48 * len(staff_lines) if staff_lines else 0)
            + 190
        )
        image = Image.new("RGB", (WIDTH, height), PAPER)
        draw = ImageDraw.Draw(image)

        self._header(draw)
        y = HEADER + 40
        boxes = []
        if roll.entries:
            for entry in roll.entries:
                boxes.append(
                    self._row(
                        draw,
                        y,
                        entry.rank,
                        entry.name,
                        entry.points,
                        entry.reason_text(80),
                    )
                )
                y += ROW
        else:
            draw.text(
                (MARGIN, y + 40),
                f"{roll.period.noun}还没有人上榜，期待大家互帮互助！",
                font=self.font(34),
                fill=GREY,
            )
            y += ROW
        y += 30
        if staff_lines:
            draw.text(
                (MARGIN, y),
                "感谢被居民点名表扬的工作人员",
                font=self.font(36),
                fill=RED,
            )
            y += 70
            for line in staff_lines:
                draw.text((MARGIN + 10, y), line, font=self.font(30), fill=INK)
                y += 48
        self._footer(draw, height)

        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        image.save(partial, "PNG", optimize=True)
        os.replace(partial, path)  # a reader never sees half a picture
        log.info(
            "honor card drawn path=%s grid=%s period=%s",
            path,
            roll.grid_id,
            roll.period.label,
        )
        return Card(path, image.size, boxes)

    def _header(self, draw: ImageDraw.ImageDraw) -> None:
        roll = self.roll
        draw.rectangle((0, 0, WIDTH, HEADER), fill=RED)
        draw.rectangle((0, HEADER - 12, WIDTH, HEADER), fill=DARK_RED)
        title = "光 荣 榜" if roll.period.kind == "week" else "月 度 光 荣 榜"
        self._centered(draw, 50, title, self.font(92), GOLD)
        self._centered(
            draw,
            170,
            f"{roll.community} · {roll.grid_name}",
            self.font(40),
            (255, 240, 220),
        )
        self._centered(draw, 226, roll.period.heading(), self.font(32), (250, 220, 200))

    def _row(
        self,
        draw: ImageDraw.ImageDraw,
        y: int,
        rank: int,
        name: str,
        points: int,
        reason: str,
    ) -> tuple[int, int, int, int]:
        cx, cy, r = MARGIN + 36, y + 50, 36
        colour = MEDALS[rank - 1] if rank <= len(MEDALS) else (214, 196, 176)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        number = self.font(40)
        nb = draw.textbbox((0, 0), str(rank), font=number)
        draw.text(
            (cx - (nb[2] + nb[0]) / 2, cy - (nb[3] + nb[1]) / 2),
            str(rank),
            font=number,
            fill=(255, 255, 255),
        )

        left = MARGIN + 100
        name_font = self.font(46)
        draw.text((left, y + 18), name, font=name_font, fill=INK)
        box = draw.textbbox((left, y + 18), name, font=name_font)

        score = f"{points} 分"
        score_font = self.font(44)
        sb = draw.textbbox((0, 0), score, font=score_font)
        draw.text(
            (WIDTH - MARGIN - (sb[2] - sb[0]), y + 20), score, font=score_font, fill=RED
        )

        reason_font = self.font(28)
        lines = self._wrap(draw, reason, reason_font, WIDTH - MARGIN - left)[:2]
        for i, line in enumerate(lines):
            draw.text((left, y + 80 + i * 34), line, font=reason_font, fill=GREY)
        draw.line(
            (MARGIN, y + ROW - 6, WIDTH - MARGIN, y + ROW - 6), fill=LINE, width=2
        )
        return (int(box[0]), int(box[1]), int(box[2]), int(box[3]))

    def _staff_lines(self) -> list[str]:
        lines = []
        for s in self.roll.staff[:4]:
            text = f"{s.name}　被表扬 {s.times} 次" + (
                f"：{s.example}" if s.example else ""
            )
            lines.append(text if len(text) <= 30 else text[:29] + "…")
        return lines

    def _footer(self, draw: ImageDraw.ImageDraw, height: int) -> None:
        roll = self.roll
        top = height - 170
        draw.rectangle((0, top, WIDTH, height), fill=(250, 236, 214))
        facts = []
        if roll.praise_count:
            facts.append(f"共收到表扬 {roll.praise_count} 次")
        if roll.same_day_resolved:
            facts.append(f"{roll.same_day_resolved} 件诉求当天办结")
        if facts:
            self._centered(
                draw,
                top + 30,
                f"{roll.period.noun}" + " · ".join(facts),
                self.font(34),
                RED,
            )
        self._centered(
            draw,
            top + 96,
            "积分可兑换社区小礼品 · 发送“/不上榜”可不公开姓名",
            self.font(26),
            GREY,
        )

    @staticmethod
    def _centered(
        draw: ImageDraw.ImageDraw,
        y: int,
        text: str,
        font: ImageFont.FreeTypeFont,
        fill: tuple[int, int, int],
    ) -> None:
        box = draw.textbbox((0, 0), text, font=font)
        draw.text(
            ((WIDTH - (box[2] - box[0])) / 2 - box[0], y), text, font=font, fill=fill
        )

    @staticmethod
    def _wrap(
        draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int
    ) -> list[str]:
        lines, current = [], ""
        for char in text:
            if draw.textlength(current + char, font=font) > width:
                lines.append(current)
                current = char
            else:
                current += char
        if current:
            lines.append(current)
        if len(lines) > 2:
            lines = [lines[0], lines[1][:-1] + "…"]
        return lines
