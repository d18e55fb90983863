"""Read the fenced code blocks of the docs pages (and README.md) for the docs tests.

A block is runnable when the line right before its opening fence is ``<!-- runnable -->``
(``<!-- runnable: dubai -->``: it needs the Dubai data set at ``../shared/datasets/dubai-mbrsc``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*runnable(?::\s*(?P<needs>[\w-]+))?\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # path relative to the project root, e.g. docs/howto/predict.md
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    runnable: bool
    needs: str | None  # e.g. "dubai"

    @property
    def id(self) -> str:
        return f"{self.page.removeprefix('docs/')}:{self.line}"


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts) + [ROOT / "README.md"]


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").split("\n")
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match["indent"], match["fence"], match["lang"].lower()
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        marker = _MARKER.match(lines[start - 1]) if start > 0 else None
        out.append(Block(page=str(path.relative_to(ROOT)), line=start + 1, lang=lang, code="\n".join(body) + "\n",
                         runnable=marker is not None, needs=marker["needs"] if marker else None))
        i += 1
    return out


def all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page)]


def runnable_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.runnable]
