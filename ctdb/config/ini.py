# -*- test-case-name: tests.test_config -*-
"""
The ini reader of ctdbd's files, as Samba's C{lib/util/tini.c} reads
them: comments, continuations, blanks squeezed, sections and
C{name = value} options.
"""

from __future__ import annotations

from collections.abc import Iterator

from ctdb.errors import IniSyntaxError


def _lines(text: str) -> Iterator[str]:
    """get_line(): skip leading blanks, comments and blank lines, join
    continuations, squeeze runs of blanks into one."""
    raw = text.split("\n")
    i = 0
    while i < len(raw):
        line = raw[i].lstrip(" \t\r\f\v")
        i += 1
        if not line or line[0] in "#;":
            continue
        out: list[str] = []
        while True:
            for c in line:
                if c.isspace() and out and out[-1].isspace():
                    continue
                out.append(c)
            if out and out[-1] == "\\":
                out.pop()
            elif len(out) > 1 and out[-2] == "\\" and out[-1].isspace():
                del out[-2:]
            else:
                break
            if i >= len(raw):
                break
            line = raw[i]
            i += 1
        yield "".join(out)


def _trimOneSpace(text: str) -> str:
    if text[:1].isspace():
        text = text[1:]
    if text[-1:].isspace():
        text = text[:-1]
    return text


def parseIni(
    text: str, allowEmptyValue: bool = False
) -> Iterator[tuple[str, str | None]]:
    """
    The events of tini_parse(): C{(section, None)} for C{[section]} and
    C{(name, value)} for C{name = value}.  A line without C{=} is skipped,
    or (C{allowEmptyValue}) has the value C{""}.  Raises L{IniSyntaxError}
    where tini_parse() stops: a section without C{]}, an empty name.
    """
    for line in _lines(text):
        if line.startswith("["):
            end = line.find("]", 1)
            if end < 0:
                raise IniSyntaxError(f"section without ']': {line!r}")
            yield line[1:end], None
            continue
        name, sep, value = line.partition("=")
        if not sep:
            if not allowEmptyValue:
                continue
            value = ""
        name = _trimOneSpace(name)
        if not name:
            raise IniSyntaxError(f"option without a name: {line!r}")
        yield name, (_trimOneSpace(value) if sep else "")
