# -*- test-case-name: tests.events.test_scripts -*-
"""
Event scripts on disk, as Samba 4.17 finds and switches them
(ctdb/common/event_script.c and the C{script} commands of
ctdb/event/event_tool.c).

A component's scripts are the entries of C{events/<component>/} named
C{NN.name.script} (C{fnmatch("[0-9][0-9].*.script")}), in byte order of
their names (C{scandir} with C{alphasort} in the C locale).  A script is
known by its name without C{.script}, and is enabled when what the entry
leads to is executable by its owner; a dangling link is a disabled script.

Two ways to switch one:

 - the event daemon's C{script} command (L{chmodScript}, 4.17's
   C{event_script_chmod}): sets or clears the three execute bits of a
   regular file in the component's directory, and refuses a link;
 - C{ctdb event script enable|disable} (L{enableScript}, L{disableScript}),
   which work on the files themselves, not through the daemon: Samba's
   packages ship scripts in C{<datadir>/events/<component>/} and enable one
   by a link to it from C{<etcdir>/events/<component>/}; a script that is a
   regular file in the latter is switched by L{chmodScript}.

L{scriptList} prints what C{ctdb event script list} prints.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from dataclasses import dataclass

#: the pattern of a script's file name (script_filter)
SCRIPT_PATTERN = "[0-9][0-9].*.script"
SCRIPT_SUFFIX = ".script"


def isScriptName(filename: str) -> bool:
    """Whether C{filename} names an event script (C{script_filter})."""
    return fnmatch.fnmatchcase(filename, SCRIPT_PATTERN)


@dataclass(frozen=True, slots=True)
class Script:
    """A script of a component: its name (without C{.script}), its path,
    and whether it is enabled (executable by its owner)."""

    name: str
    path: str
    enabled: bool


def listScripts(directory: str) -> list[Script]:
    """
    C{event_script_get_list}: the scripts in C{directory}, sorted.

    @raise OSError: the directory cannot be read (C{FileNotFoundError} if
        it does not exist).
    """
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if isScriptName(e.name)]
    names.sort(key=os.fsencode)
    scripts = []
    for filename in names:
        path = f"{directory}/{filename}"
        try:
            enabled = bool(os.stat(path).st_mode & stat.S_IXUSR)
        except OSError:
            # dangling link, or gone since the directory was read
            enabled = False
        scripts.append(Script(filename[: -len(SCRIPT_SUFFIX)], path, enabled))
    return scripts


def chmodScript(directory: str, script: str, enable: bool) -> int:
    """
    C{event_script_chmod}: set (or clear) the execute bits of C{script} (a
    name, with or without C{.script}) in C{directory}.  Returns 0 or an
    errno: ENOENT if there is no such entry, EINVAL if its name is not a
    script's or it is a link, or the error of opening or changing it.
    """
    filename = script
    if not (len(script) > len(SCRIPT_SUFFIX) and script.endswith(SCRIPT_SUFFIX)):
        filename = script + SCRIPT_SUFFIX
    try:
        with os.scandir(directory) as entries:
            found = [e for e in entries if e.name == filename]
    except OSError as e:
        return e.errno or errno.EIO
    if not found:
        return errno.ENOENT
    if not isScriptName(filename):
        return errno.EINVAL
    inode = found[0].inode()
    try:
        fd = os.open(f"{directory}/{filename}", os.O_RDWR)
    except OSError as e:
        return e.errno or errno.EIO
    try:
        st = os.fstat(fd)
        # a link's entry is not the inode it leads to: not ours to change
        if st.st_ino != inode:
            return errno.EINVAL
        bits = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
        mode = st.st_mode | bits if enable else st.st_mode & ~bits
        os.fchmod(fd, stat.S_IMODE(mode))
    except OSError as e:
        return e.errno or errno.EIO
    finally:
        os.close(fd)
    return 0


def _toolChmod(
    etcEvents: str, component: str, script: str, enable: bool
) -> tuple[int, str]:
    """event_tool.c's C{event_command_script}: L{chmodScript} and what the
    tool prints of its result."""
    result = chmodScript(f"{etcEvents}/{component}", script, enable)
    if result == errno.EINVAL:
        return result, f"Script {script} is invalid in {component}\n"
    if result == errno.ENOENT:
        return result, f"Script {script} does not exist in {component}\n"
    return result, ""


def enableScript(
    etcEvents: str, dataEvents: str, component: str, script: str
) -> tuple[int, str]:
    """
    C{ctdb event script enable COMPONENT SCRIPT}, with C{etcEvents} and
    C{dataEvents} the C{events} directories of etcdir and datadir: a link
    there already is enabled; a regular file gets its execute bits; a
    missing script is linked to the one datadir ships.  Returns (the tool's
    exit status: 0 or an errno, what it prints).
    """
    target = f"{etcEvents}/{component}/{script}.script"
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return _linkShipped(
            target, f"{dataEvents}/{component}/{script}.script", component, script
        )
    except OSError:
        return errno.EINVAL, f"Script {target} does not exist\n"
    if stat.S_ISLNK(st.st_mode):
        return 0, ""
    if stat.S_ISREG(st.st_mode):
        return _toolChmod(etcEvents, component, script, True)
    return errno.EINVAL, f"Script {target} is not a file or a link\n"


def _linkShipped(
    target: str, shipped: str, component: str, script: str
) -> tuple[int, str]:
    try:
        real = os.path.realpath(shipped, strict=True)
    except FileNotFoundError:
        return errno.ENOENT, f"Script {script} does not exist in {component}\n"
    except OSError as e:
        return e.errno or errno.EIO, ""
    try:
        os.stat(real)
    except OSError:
        return errno.ENOENT, f"Script {script} does not exist in {component}\n"
    try:
        os.symlink(real, target)
    except OSError:
        return errno.EIO, f"Failed to create symlink {target}\n"
    return 0, ""


def disableScript(etcEvents: str, component: str, script: str) -> tuple[int, str]:
    """
    C{ctdb event script disable COMPONENT SCRIPT}: a link is removed, a
    regular file loses its execute bits, a missing script is no error.
    Returns (exit status, what the tool prints).
    """
    target = f"{etcEvents}/{component}/{script}.script"
    try:
        st = os.lstat(target)
    except OSError:
        return 0, ""
    if stat.S_ISLNK(st.st_mode):
        try:
            os.unlink(target)
        except OSError:
            return errno.EIO, f"Failed to remove symlink {target}\n"
        return 0, ""
    if stat.S_ISREG(st.st_mode):
        return _toolChmod(etcEvents, component, script, False)
    return errno.EINVAL, f"Script {target} is not a file or a link\n"


def scriptList(etcEvents: str, dataEvents: str, component: str) -> tuple[int, str]:
    """
    C{ctdb event script list COMPONENT}: first the scripts datadir ships,
    C{*} before those a link in etcdir enables, then (after a blank line if
    both lists print) etcdir's own scripts, C{*} before the executable
    ones.  Returns (exit status, what the tool prints); the shipped
    directory must exist (ENOENT otherwise, as 4.17).
    """
    try:
        dataDir = os.path.realpath(f"{dataEvents}/{component}", strict=True)
    except FileNotFoundError:
        return errno.ENOENT, ""
    except OSError as e:
        return e.errno or errno.EIO, ""
    try:
        shipped: list[Script] | None = listScripts(dataDir)
    except FileNotFoundError:
        shipped = None
    except OSError as e:
        return e.errno or errno.EIO, ""
    try:
        local: list[Script | None] = list(listScripts(f"{etcEvents}/{component}"))
    except OSError as e:
        return e.errno or errno.EIO, ""
    lines = []
    if shipped is not None:
        j = matched = 0
        for d in shipped:
            flag = " "
            while j < len(local):
                mine = local[j]
                assert mine is not None
                if os.fsencode(mine.name) > os.fsencode(d.name):
                    break
                j += 1
                if mine.name != d.name:
                    continue
                try:
                    linked = os.readlink(mine.path)
                except OSError:
                    break
                if linked == d.path:
                    flag = "*"
                    local[j - 1] = None
                    matched += 1
                break
            lines.append(f"{flag} {d.name}\n")
        if shipped and matched != len(local):
            lines.append("\n")
    for mine in local:
        if mine is not None:
            lines.append(f"{'*' if mine.enabled else ' '} {mine.name}\n")
    return 0, "".join(lines)
