# -*- test-case-name: tests.events.test_scripts -*-
"""
Tests for L{ctdb.events.scripts}: which entries are scripts, in what
order, which are enabled, and switching them as the event daemon's
C{script} command and C{ctdb event script ...} do.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from ctdb.events.scripts import (
    Script,
    chmodScript,
    disableScript,
    enableScript,
    isScriptName,
    listScripts,
    scriptList,
)


class Layout:
    """A CTDB_BASE with etc events and a datadir (share) with shipped
    scripts, as Samba's packages lay them out."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.base = tempfile.mkdtemp(prefix="txctdb-scripts-")
        case.addCleanup(shutil.rmtree, self.base, True)
        self.etc = os.path.join(self.base, "events")
        self.data = os.path.join(self.base, "share", "events")
        os.makedirs(os.path.join(self.etc, "legacy"))
        os.makedirs(os.path.join(self.data, "legacy"))

    def put(self, where: str, name: str, mode: int = 0o755) -> str:
        path = os.path.join(where, "legacy", name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, mode)
        return path


class ListTests(SynchronousTestCase):
    """event_script_get_list."""

    def test_names(self) -> None:
        """Two digits, a dot, anything, .script."""
        for name in ("00.a.script", "99.x.y.script", "10..script", "01.\xe9.script"):
            self.assertTrue(isScriptName(name), name)
        for name in (
            "0.a.script",
            "ab.c.script",
            "10.a.scripts",
            "10.a.script~",
            "10.a",
        ):
            self.assertFalse(isScriptName(name), name)

    def test_orderAndEnabled(self) -> None:
        """Sorted by the bytes of their names; enabled when executable by
        the owner (through a link too); a dangling link is disabled."""
        layout = Layout(self)
        d = os.path.join(layout.etc, "legacy")
        layout.put(layout.etc, "10.b.script")
        layout.put(layout.etc, "10.B.script", mode=0o644)
        layout.put(layout.etc, "01.z.script", mode=0o655)
        layout.put(layout.etc, "README")
        shipped = layout.put(layout.data, "05.link.script")
        os.symlink(shipped, os.path.join(d, "05.link.script"))
        os.symlink("/nonexistent", os.path.join(d, "06.dangling.script"))
        self.assertEqual(
            listScripts(d),
            [
                Script("01.z", f"{d}/01.z.script", False),
                Script("05.link", f"{d}/05.link.script", True),
                Script("06.dangling", f"{d}/06.dangling.script", False),
                Script("10.B", f"{d}/10.B.script", False),
                Script("10.b", f"{d}/10.b.script", True),
            ],
        )

    def test_missingDirectory(self) -> None:
        """A directory that is not there raises FileNotFoundError."""
        self.assertRaises(FileNotFoundError, listScripts, "/nonexistent/legacy")


class ChmodTests(SynchronousTestCase):
    """event_script_chmod: the daemon's SCRIPT command."""

    def test_enableDisable(self) -> None:
        """All three execute bits go and come; the name may carry .script."""
        layout = Layout(self)
        path = layout.put(layout.etc, "10.a.script", mode=0o750)
        d = os.path.join(layout.etc, "legacy")
        self.assertEqual(chmodScript(d, "10.a", False), 0)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        self.assertEqual(chmodScript(d, "10.a.script", True), 0)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o751)

    def test_refusals(self) -> None:
        """No such script: ENOENT; a name that is no script's or a link:
        EINVAL; no directory: ENOENT."""
        layout = Layout(self)
        d = os.path.join(layout.etc, "legacy")
        shipped = layout.put(layout.data, "05.link.script")
        os.symlink(shipped, os.path.join(d, "05.link.script"))
        with open(os.path.join(d, "x.script"), "w"):
            pass
        self.assertEqual(chmodScript(d, "10.none", True), errno.ENOENT)
        self.assertEqual(chmodScript(d, "x", True), errno.EINVAL)
        self.assertEqual(chmodScript(d, "05.link", False), errno.EINVAL)
        self.assertEqual(os.stat(shipped).st_mode & 0o777, 0o755)
        self.assertEqual(chmodScript("/nonexistent", "10.a", True), errno.ENOENT)


class ToolTests(SynchronousTestCase):
    """ctdb event script list/enable/disable (event_tool.c)."""

    def test_enableLinksShipped(self) -> None:
        """Enabling a shipped script links it from etc; disabling removes
        the link; the listing flags it."""
        layout = Layout(self)
        shipped = layout.put(layout.data, "10.interface.script", mode=0o644)
        layout.put(layout.data, "50.samba.script", mode=0o644)
        link = os.path.join(layout.etc, "legacy", "10.interface.script")
        self.assertEqual(
            enableScript(layout.etc, layout.data, "legacy", "10.interface"), (0, "")
        )
        self.assertEqual(os.readlink(link), os.path.realpath(shipped))
        self.assertEqual(
            enableScript(layout.etc, layout.data, "legacy", "10.interface"), (0, "")
        )
        self.assertEqual(
            scriptList(layout.etc, layout.data, "legacy"),
            (0, "* 10.interface\n  50.samba\n"),
        )
        self.assertEqual(disableScript(layout.etc, "legacy", "10.interface"), (0, ""))
        self.assertFalse(os.path.lexists(link))
        self.assertEqual(disableScript(layout.etc, "legacy", "10.interface"), (0, ""))

    def test_localScripts(self) -> None:
        """A regular file in etc is switched by its mode and listed after
        the shipped ones, after a blank line."""
        layout = Layout(self)
        layout.put(layout.data, "10.interface.script")
        path = layout.put(layout.etc, "99.mine.script", mode=0o644)
        self.assertEqual(
            enableScript(layout.etc, layout.data, "legacy", "99.mine"), (0, "")
        )
        self.assertEqual(os.stat(path).st_mode & 0o111, 0o111)
        self.assertEqual(
            scriptList(layout.etc, layout.data, "legacy"),
            (0, "  10.interface\n\n* 99.mine\n"),
        )
        self.assertEqual(disableScript(layout.etc, "legacy", "99.mine"), (0, ""))
        self.assertEqual(os.stat(path).st_mode & 0o111, 0)

    def test_errors(self) -> None:
        """A script that exists nowhere: ENOENT and the tool's message; no
        shipped directory: the listing fails with ENOENT."""
        layout = Layout(self)
        self.assertEqual(
            enableScript(layout.etc, layout.data, "legacy", "10.none"),
            (errno.ENOENT, "Script 10.none does not exist in legacy\n"),
        )
        os.mkdir(os.path.join(layout.etc, "legacy", "20.dir.script"))
        self.assertEqual(
            enableScript(layout.etc, layout.data, "legacy", "20.dir")[0], errno.EINVAL
        )
        self.assertEqual(
            scriptList(layout.etc, layout.data, "nosuch"), (errno.ENOENT, "")
        )
