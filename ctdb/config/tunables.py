# -*- test-case-name: tests.test_config -*-
"""
C{ctdb.tunables}, read as Samba 4.17's C{common/tunable.c} reads it:
C{Name=value} lines; every bad line is reported and skipped.
"""

from __future__ import annotations

from ctdb.config.ini import parseIni
from ctdb.config.messages import ERR, NOTICE, Message
from ctdb.config.paths import CTDBPaths
from ctdb.errors import IniSyntaxError
from ctdb.protocols.tunables import Tunables


def parseTunables(text: str) -> tuple[dict[str, int], list[Message]]:
    """
    ctdb_tunable_load_file(): C{Name=value} lines.  Every bad line is
    reported; the good ones still apply (ctdbd ignores the failure).
    """
    known = Tunables()
    func = "ctdb_tunable_load_file"
    values: dict[str, int] = {}
    msgs: list[Message] = []
    try:
        for name, raw in parseIni(text, allowEmptyValue=True):
            if raw is None:
                msgs.append(
                    Message(
                        ERR,
                        f"{func}: Invalid line for section [{name}] - sections not supported ",
                    )
                )
                continue
            if raw == "":
                msgs.append(Message(ERR, f'{func}: Invalid line containing "{name}"'))
                continue
            try:
                number = int(raw, 0)
                if number < 0:
                    raise ValueError(raw)
            except ValueError:
                msgs.append(
                    Message(ERR, f'{func}: Invalid value "{raw}" for tunable "{name}"')
                )
                continue
            canonical = known.canonical(name)
            if canonical is None:
                msgs.append(Message(ERR, f'{func}: Unknown tunable "{name}"'))
                continue
            values[canonical] = number & 0xFFFFFFFF
    except IniSyntaxError:
        msgs.append(Message(ERR, f"{func}: Syntax error"))
    return values, msgs


def loadTunables(paths: CTDBPaths) -> tuple[dict[str, int], list[Message]]:
    path = paths.tunablesFile
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        return {}, []
    except OSError:
        return {}, [Message(ERR, f"Failed to open {path}")]
    values, msgs = parseTunables(text)
    return values, [Message(NOTICE, f"Loading tunables from {path}"), *msgs]
