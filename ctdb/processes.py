# -*- test-case-name: tests.test_processes -*-
"""
What the local-cluster commands (C{ctdb-cluster}, its C{samba} part) read of
the processes they started, from /proc: a process's state, parent, group
and session, its command line, the live members of a process group or
children of a process, and the tail of a log.  They signal processes only
through PIDs they recorded, and check them here first.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class ProcStat(NamedTuple):
    """The fields of /proc/PID/stat we use."""

    state: str
    ppid: int
    pgrp: int
    session: int
    starttime: int


def procStat(pid: int) -> ProcStat | None:
    """The stat of process C{pid}, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    # after the comm: state ppid pgrp session tty tpgid flags minflt cminflt
    # majflt cmajflt utime stime cutime cstime priority nice threads
    # itrealvalue starttime ...
    return ProcStat(
        fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])
    )


def isAlive(pid: int) -> bool:
    """Whether process C{pid} exists and is not a zombie."""
    st = procStat(pid)
    return st is not None and st.state != "Z"


def commandLine(pid: int) -> bytes:
    """The NUL-separated command line of C{pid}; b"" if none can be read
    (also for a moment just after a (v)fork and exec)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def liveProcesses(*, ppid: int | None = None, pgrp: int | None = None) -> list[int]:
    """The live (non-zombie) processes with parent C{ppid} and/or in
    process group C{pgrp}."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = procStat(int(name))
        if st is None or st.state == "Z":
            continue
        if ppid is not None and st.ppid != ppid:
            continue
        if pgrp is not None and st.pgrp != pgrp:
            continue
        found.append(int(name))
    return sorted(found)


def tailFile(path: str, lines: int) -> str:
    """The last C{lines} lines of a log file, "" if it cannot be read."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""
