"""Read tests/data/comfyui/api_examples.md: the real ComfyUI's recorded requests and answers.

Some long answers are cut off in the recording; `parse_json_prefix` keeps the complete part
of such a body so that what was recorded can still be compared.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.shared_files import API_EXAMPLES

_ANSWER = re.compile(r"^-> HTTP (\d+), Content-Type `([^`]*)`$")
_REQUEST = re.compile(r"^`(GET|POST) ([^`]+)`$")


@dataclass
class Exchange:
    title: str
    method: str | None = None
    path: str | None = None
    request_json: Any = None
    raw_body: str | None = None
    multipart: str | None = None
    status: int | None = None
    content_type: str | None = None
    answer_text: str = ""
    answer: Any = None
    answer_complete: bool = False
    messages: list[dict] | None = None  # a section of WebSocket messages


def parse_json_prefix(text: str) -> tuple[Any, bool]:
    """(value, complete): the whole JSON value, or, for a cut-off text, the value made of
    its complete members (the cut member is dropped, open brackets are closed)."""
    try:
        return json.loads(text), True
    except ValueError:
        return _complete_members(text), False


def _complete_members(text: str) -> Any:
    """The value of a cut-off JSON text, made of its complete members."""
    stack: list[str] = []
    in_string = escaped = False
    cut_points: list[tuple[int, str]] = []  # (index of a separator, closers needed there)
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
            cut_points.append((index + 1, "".join(reversed(stack))))
        elif char in "]}":
            stack.pop()
        elif char == ",":
            cut_points.append((index, "".join(reversed(stack))))
    for end, closers in reversed(cut_points):
        try:
            return json.loads(text[:end] + closers)
        except ValueError:
            continue
    raise ValueError("no complete JSON prefix")


def _blocks(lines: list[str]) -> list[tuple[int, str, str]]:
    """(line index after the block, language, text) of each fenced block."""
    blocks, index = [], 0
    while index < len(lines):
        if lines[index].startswith("```"):
            language = lines[index][3:].strip()
            end = index + 1
            while end < len(lines) and lines[end] != "```":
                end += 1
            blocks.append((index, language, "\n".join(lines[index + 1:end])))
            index = end + 1
        else:
            index += 1
    return blocks


def load_exchanges(path: Path = API_EXAMPLES) -> list[Exchange]:
    sections = re.split(r"^### ", path.read_text(encoding="utf-8"), flags=re.M)[1:]
    result = []
    for section in sections:
        lines = section.splitlines()
        exchange = Exchange(title=lines[0].strip())
        answer_line = None
        for number, line in enumerate(lines):
            if (match := _REQUEST.match(line)) and exchange.method is None:
                exchange.method, exchange.path = match.groups()
            elif line.startswith("raw body: `"):
                exchange.raw_body = line[len("raw body: `"):-1]
            elif line.startswith("multipart files:"):
                exchange.multipart = line
            elif match := _ANSWER.match(line):
                exchange.status, exchange.content_type = int(match.group(1)), match.group(2)
                answer_line = number
        for start, language, text in _blocks(lines):
            if answer_line is None or start < answer_line:
                if language == "json" and exchange.method is None:
                    exchange.messages = [json.loads(x) for x in text.splitlines() if x.strip()]
                elif language == "json":
                    exchange.request_json = json.loads(text)
            elif not exchange.answer_text:
                exchange.answer_text = text
                if language == "json":
                    exchange.answer, exchange.answer_complete = parse_json_prefix(text)
        result.append(exchange)
    return result


def exchange(title_start: str, exchanges: list[Exchange] | None = None) -> Exchange:
    items = exchanges or load_exchanges()
    for item in items:
        if item.title == title_start:
            return item
    for item in items:
        if item.title.startswith(title_start):
            return item
    raise KeyError(f"no recorded exchange titled {title_start!r} in {API_EXAMPLES}")
