"""The one text normaliser every model reads issues through.

``normalize(title, body)`` returns ``title`` and the cleaned body on separate
lines. Cleaning, in order: repair odd unicode (lone surrogates, control
characters, NFKC), drop HTML comments (issue-template hints live there) and
simple HTML tags, drop checkbox lines and ``_No response_`` placeholders, keep
headings as plain words but drop headings whose section is empty, trim long
fenced code blocks to their head and tail (keeping exception lines such as
``RuntimeError: CUDA out of memory`` from the middle), collapse whitespace and
cap the length, keeping head and tail. Every step is linear in the input.
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 4000
BLOCK_HEAD = 8
BLOCK_TAIL = 4
MAX_KEPT_ERRORS = 3
_RAW_CAP = 200_000  # bodies beyond this are cut (head and tail) before any work
_ERROR_SCAN_CHARS = 400  # only the start of a line is searched for an exception name
_ELLIPSIS = "…"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,20}(?:\s[^<>\n]{0,200})?/?>")
_IMAGE = re.compile(r"!\[[^\]\n]{0,200}\]\([^)\s]{0,500}\)")
_CHECKBOX = re.compile(r"[-*+]\s+\[[ xX]?\]\s")
_HEADING = re.compile(r"(#{1,6})\s+(.*)")
_BOLD_HEADING = re.compile(r"\*\*([^*\n]{1,80})\*\*:?")
_FENCE = re.compile(r"(`{3,}|~{3,})")
_PLACEHOLDER = re.compile(r"_?no response_?|n/?a|none|-", re.IGNORECASE)
_EXCEPTION = re.compile(
    r"\b(?:[A-Za-z_][A-Za-z0-9_]{0,60}\.){0,6}[A-Za-z_][A-Za-z0-9_]{0,60}"
    r"(?:Error|Exception|Exit|Interrupt|Warning|Fault)\b:?"
)
_SPACES = re.compile(r"[ \t\f\v\xa0]+")


def normalize(title: str, body: str | None, max_chars: int = MAX_CHARS) -> str:
    """The text a model sees for an issue: ``title`` then the cleaned ``body``."""
    head = _collapse(_clean_unicode(title or ""))
    rest = _clean_body(body or "")
    text = f"{head}\n{rest}" if head and rest else head or rest
    return _cap(text, max_chars)


def _clean_unicode(text: str) -> str:
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = unicodedata.normalize("NFKC", text)
    return _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


def _collapse(line: str) -> str:
    return _SPACES.sub(" ", line).strip()


def _clean_body(body: str) -> str:
    if len(body) > _RAW_CAP:
        body = body[: _RAW_CAP * 3 // 4] + "\n" + body[-_RAW_CAP // 4 :]
    body = _drop_html_comments(_clean_unicode(body))
    body = _IMAGE.sub("(image)", body)
    body = _TAG.sub(" ", body)
    lines = _trim_code_blocks(body.split("\n"))
    return "\n".join(_drop_empty_sections(lines))


def _drop_html_comments(text: str) -> str:
    """Remove ``<!-- ... -->``; an unclosed comment hides the rest, as on GitHub."""
    parts: list[str] = []
    pos = 0
    while True:
        start = text.find("<!--", pos)
        if start < 0:
            parts.append(text[pos:])
            break
        parts.append(text[pos:start])
        end = text.find("-->", start + 4)
        if end < 0:
            break
        pos = end + 3
    return "".join(parts)


def _trim_code_blocks(lines: list[str]) -> list[str]:
    """Cut fenced blocks longer than head+tail lines; unclosed fences run to the end."""
    out: list[str] = []
    block: list[str] | None = None
    for line in lines:
        is_fence = _FENCE.match(line.strip()) is not None
        if block is None:
            if is_fence:
                block = []
            else:
                out.append(line)
        elif is_fence:
            out.extend(_shorten_block(block))
            block = None
        else:
            block.append(line)
    if block is not None:
        out.extend(_shorten_block(block))
    return out


def _shorten_block(block: list[str]) -> list[str]:
    if len(block) <= BLOCK_HEAD + BLOCK_TAIL:
        return block
    middle = block[BLOCK_HEAD:-BLOCK_TAIL]
    errors = [line for line in middle if _EXCEPTION.search(line[:_ERROR_SCAN_CHARS])]
    return [*block[:BLOCK_HEAD], _ELLIPSIS, *errors[-MAX_KEPT_ERRORS:], *block[-BLOCK_TAIL:]]


def _drop_empty_sections(lines: list[str]) -> list[str]:
    """Drop checkboxes and placeholders; keep a heading only if text follows it."""
    out: list[str] = []
    pending: str | None = None
    for raw in lines:
        line = _collapse(raw)
        if not line or _CHECKBOX.match(line) or _PLACEHOLDER.fullmatch(line):
            continue
        heading = _heading_text(line)
        if heading is not None:
            pending = heading
            continue
        if pending:
            out.append(pending)
            pending = None
        out.append(line)
    return out


def _heading_text(line: str) -> str | None:
    match = _HEADING.fullmatch(line) or _BOLD_HEADING.fullmatch(line)
    return match.group(match.lastindex or 1).strip(" #") if match else None


def _cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    tail = max_chars // 4
    head = max_chars - tail - 3
    return f"{text[:head]} {_ELLIPSIS} {text[-tail:]}"
