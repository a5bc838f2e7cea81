# -*- test-case-name: tests.events.test_samba_tool -*-
"""
Samba's own tool against our event daemon, side by side with Samba's
ctdb-eventd 4.17: two C{CTDB_BASE} directories with the same scripts, our
L{EventService} serving one's ``run/eventd.socket``, Samba's
``ctdb-eventd`` the other's; the same ``ctdb event ...`` and ``ctdb
scriptstatus`` commands (Debian's ``ctdb``, which runs ``ctdb-event``) go
to both, and what they print and exit with must be the same byte for
byte, times and durations aside.  Skipped where Samba's programs are not
installed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import tempfile
import unittest

from twisted.internet import defer
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from ctdb.events.client import connectEventClient
from ctdb.events.service import EventService
from ctdb.protocols.tunables import Tunables

from ._helpers import REACTOR, gone, killGroup, readPids, waitUntil

CTDB = shutil.which("ctdb") or "/usr/bin/ctdb"
SAMBA_EVENTD = "/usr/libexec/ctdb/ctdb-eventd"
SAMBA_EVENT_TOOL = "/usr/libexec/ctdb/ctdb-event"
HAVE_SAMBA = all(os.access(p, os.X_OK) for p in (CTDB, SAMBA_EVENTD, SAMBA_EVENT_TOOL))

#: ctdb reads a helper's exit status of 64-254 as an errno less 64 (ctdb.c's
#: run_helper), so ctdb-event's ETIMEDOUT (110) comes out as 46
TIMEDOUT_EXIT = errno.ETIMEDOUT - 64

#: a duration ("0.012 ") and a ctime ("Sun Dec  6 03:40:00 2026")
_TIMES = re.compile(rb"\d+\.\d{3} |\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}")

SCRIPTS = {
    "01.args": 'echo "args: $*"\n',
    "02.fail": '[ -e "$CTDB_BASE/fail" ] && { echo "failing $1"; exit 3; }\nexit 0\n',
    "03.junk": "[ \"$1\" = junk ] && { printf 'bad \\377\\376 bytes\\n'; exit 1; }\nexit 0\n",
    "04.odd": '[ "$1" = odd ] && exit 65\n[ "$1" = odd64 ] && exit 64\nexit 0\n',
    "05.hang": '[ "$1" = hang ] && { echo $$ >> "$CTDB_BASE/pids"; echo Sleeping...; '
    "exec sleep 60; }\nexit 0\n",
    "06.disabled": "echo never\n",
}


class _Eventd(ProcessProtocol):
    def __init__(self) -> None:
        self.ended: defer.Deferred[None] = defer.Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)


class Twin:
    """A CTDB_BASE: events/legacy with L{SCRIPTS}, an empty component,
    share/events/legacy with a shipped script (C{script list} wants it)."""

    def __init__(self, case: TestCase, top: str, name: str) -> None:
        self.base = os.path.join(top, name)
        legacy = os.path.join(self.base, "events", "legacy")
        os.makedirs(legacy)
        os.makedirs(os.path.join(self.base, "events", "empty"))
        os.makedirs(os.path.join(self.base, "run"))
        shipped = os.path.join(self.base, "share", "events", "legacy")
        os.makedirs(shipped)
        with open(os.path.join(shipped, "10.shipped.script"), "w") as f:
            f.write("#!/bin/sh\necho shipped\n")
        for script, body in SCRIPTS.items():
            path = os.path.join(legacy, f"{script}.script")
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + body)
            os.chmod(path, 0o644 if script.endswith("disabled") else 0o755)
        case.addCleanup(self.killHung)

    def killHung(self) -> None:
        for pid in readPids(os.path.join(self.base, "pids")):
            killGroup(pid)

    @property
    def socket(self) -> str:
        return os.path.join(self.base, "run", "eventd.socket")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTDB")}
        env.update(CTDB_BASE=self.base, CTDB_TEST_MODE="yes")
        return env

    async def tool(self, *args: str) -> tuple[int, bytes, bytes]:
        out, err, code = await getProcessOutputAndValue(
            CTDB, list(args), env=self.env(), reactor=REACTOR
        )
        return code, _TIMES.sub(b"<T> ", out), _TIMES.sub(b"<T> ", err)


@unittest.skipIf(
    not HAVE_SAMBA, "Samba's ctdb, ctdb-event and ctdb-eventd are not installed"
)
class SambaToolTests(TestCase):
    """ctdb event ... against our daemon and Samba's, compared."""

    timeout = 120

    async def setUp(self) -> None:  # type: ignore[override]
        top = tempfile.mkdtemp(prefix="txctdb-evtool-")
        self.addCleanup(shutil.rmtree, top, True)
        self.ours = Twin(self, top, "ours")
        self.samba = Twin(self, top, "samba")
        node = type("Node", (), {"tunables": Tunables()})()
        self.service = EventService(
            reactor=REACTOR,
            daemon=node,
            eventsDir=os.path.join(self.ours.base, "events"),
            socketPath=self.ours.socket,
            environment=self.ours.env(),
            killGrace=1.0,
        )
        self.service.startService()
        self.addCleanup(self.service.stopService)
        eventd = _Eventd()
        env = self.samba.env()
        env["CTDB_INTERACTIVE"] = "yes"
        transport = REACTOR.spawnProcess(
            eventd,
            SAMBA_EVENTD,
            [SAMBA_EVENTD, "-P", str(os.getpid())],
            env=env,
            childFDs={0: "w", 1: "r", 2: "r"},
        )

        async def stopEventd() -> None:
            if not eventd.ended.called:
                transport.signalProcess(signal.SIGTERM)
            await eventd.ended

        self.addCleanup(lambda: defer.ensureDeferred(stopEventd()))
        await waitUntil(lambda: os.path.exists(self.samba.socket))
        # connectable, not only bound
        client = await connectEventClient(REACTOR, self.samba.socket)
        client.close()

    async def both(self, *args: str) -> tuple[int, bytes, bytes]:
        """Run the tool against both; assert the same; return ours."""
        ours, samba = await defer.gatherResults(
            [
                defer.ensureDeferred(self.ours.tool(*args)),
                defer.ensureDeferred(self.samba.tool(*args)),
            ]
        )
        self.assertEqual(ours, samba, f"ctdb {' '.join(args)}")
        return ours

    def touch(self, name: str) -> None:
        for twin in (self.ours, self.samba):
            with open(os.path.join(twin.base, name), "w"):
                pass

    async def test_runStatusScriptstatus(self) -> None:
        """run and status (never run, ok, failed, with arguments, missing
        component, an empty one) and scriptstatus print and exit alike."""
        code, out, _ = await self.both("event", "status", "legacy", "monitor")
        self.assertEqual(
            (code, out), (errno.EINVAL, b"Event monitor has never run in legacy\n")
        )
        self.assertEqual(
            (await self.both("event", "run", "10", "legacy", "monitor"))[0], 0
        )
        code, out, _ = await self.both("scriptstatus")
        self.assertEqual(code, 0)
        self.assertIn(b"06.disabled          DISABLED  \n", out)
        await self.both("event", "status", "legacy", "monitor")
        self.touch("fail")
        code, out, _ = await self.both(
            "event", "run", "10", "legacy", "takeip", "eth0", "10.1.1.1", "24"
        )
        self.assertEqual(
            (code, out), (errno.ENOEXEC, b"Event takeip in legacy failed\n")
        )
        code, out, _ = await self.both("event", "status", "legacy", "takeip")
        self.assertEqual(code, 3)
        self.assertIn(b"  OUTPUT: failing takeip\n", out)
        await self.both("scriptstatus", "takeip")
        await self.both("scriptstatus")
        code, out, _ = await self.both("event", "run", "10", "nosuch", "monitor")
        self.assertEqual(
            (code, out), (errno.ENOENT, b"Event dir for nosuch does not exist\n")
        )
        await self.both("event", "status", "nosuch", "monitor")
        self.assertEqual(
            (await self.both("event", "run", "10", "empty", "monitor"))[0], 0
        )
        self.assertEqual(
            await self.both("event", "status", "empty", "monitor"), (0, b"", b"")
        )

    async def test_oddResults(self) -> None:
        """Garbage output, exit 65 and 64, and a timeout of 0 read alike."""
        for event in ("junk", "odd", "odd64"):
            await self.both("event", "run", "10", "legacy", event)
            code, out, _ = await self.both("scriptstatus", event)
        self.assertIn(
            b"OUTPUT: bad \xff\xfe bytes\n",
            (await self.both("scriptstatus", "junk"))[1],
        )
        self.assertIn(
            b"CANNOT RUN (Operation not permitted)",
            (await self.both("scriptstatus", "odd"))[1],
        )
        self.assertEqual(code, 0)
        code, out, _ = await self.both("event", "run", "0", "legacy", "monitor")
        self.assertEqual(
            (code, out), (TIMEDOUT_EXIT, b"Event monitor in legacy timed out\n")
        )
        # Which script the 0 s timeout catches is a race in both daemons
        # (Samba's first script sometimes ends before its timer fires):
        # each status is scripts OK, then the one that timed out, last.
        ours, samba = await defer.gatherResults(
            [
                defer.ensureDeferred(self.ours.tool("scriptstatus")),
                defer.ensureDeferred(self.samba.tool("scriptstatus")),
            ]
        )
        self.assertEqual((ours[0], ours[2]), (samba[0], samba[2]))
        for name, (_, text, _) in (("ours", ours), ("samba", samba)):
            states = re.findall(rb"^\S+\s+(OK|TIMEDOUT)\s", text, re.MULTILINE)
            self.assertTrue(states, f"{name}: {text!r}")
            self.assertEqual(
                states,
                [b"OK"] * (len(states) - 1) + [b"TIMEDOUT"],
                f"{name}: {text!r}",
            )

    async def test_hung(self) -> None:
        """A hung script: timed out, TIMEDOUT with its output in the
        status; ours is killed."""
        code, out, _ = await self.both("event", "run", "1", "legacy", "hang")
        self.assertEqual(
            (code, out), (TIMEDOUT_EXIT, b"Event hang in legacy timed out\n")
        )
        code, out, _ = await self.both("scriptstatus", "hang")
        self.assertIn(
            b"05.hang              TIMEDOUT   <T> \n  OUTPUT: Sleeping...\n\n", out
        )
        self.assertEqual(code, 0)  # scriptstatus never fails
        ours = readPids(os.path.join(self.ours.base, "pids"))
        await waitUntil(lambda: all(gone(p) for p in ours))

    async def test_scriptCommands(self) -> None:
        """script list, disable and enable (on files, not through the
        daemon) print alike, and both daemons follow."""
        code, out, _ = await self.both("event", "script", "list", "legacy")
        self.assertEqual(code, 0)
        self.assertIn(b"  10.shipped\n\n* 01.args\n", out)
        self.touch("fail")
        self.assertEqual(
            (await self.both("event", "script", "disable", "legacy", "02.fail"))[0], 0
        )
        self.assertEqual(
            (await self.both("event", "run", "10", "legacy", "monitor"))[0], 0
        )
        await self.both("scriptstatus")
        self.assertEqual(
            (await self.both("event", "script", "enable", "legacy", "02.fail"))[0], 0
        )
        self.assertEqual(
            (await self.both("event", "run", "10", "legacy", "monitor"))[0],
            errno.ENOEXEC,
        )
        self.assertEqual(
            (await self.both("event", "script", "enable", "legacy", "10.shipped"))[0], 0
        )
        await self.both("event", "script", "list", "legacy")
        self.assertEqual(
            (await self.both("event", "run", "10", "legacy", "startup"))[0],
            errno.ENOEXEC,
        )
        await self.both("scriptstatus", "startup")
        await self.both("event", "script", "disable", "legacy", "10.shipped")
        await self.both("event", "script", "enable", "legacy", "99.none")
        await self.both("event", "script", "list", "nosuch")
