# -*- test-case-name: tests.events.test_runner -*-
"""
Tests for L{ctdb.events.runner}: real scripts in a temporary events
directory, run on the real reactor as Samba 4.17's event daemon runs them
(order, arguments, environment, process groups, failures, timeouts and the
debug script, output, daemons, cancellation, queueing).
"""

from __future__ import annotations

import errno
import os
import signal
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from ctdb.events.runner import (
    MAX_OUTPUT,
    EventContext,
    EventResult,
    ProcResult,
)
from ctdb.protocols.event import (
    CTDB_EVENT_RUN_ALL,
    RequestRun,
    RequestScript,
    RequestStatus,
    ScriptAction,
)

from ._helpers import (
    REACTOR,
    ScriptsDir,
    gone,
    killGroup,
    killRecorded,
    readPids,
    waitUntil,
)


class ProcResultTests(TestCase):
    """How a wait status becomes a script's result (run_proc.c,
    run_event.c)."""

    def test_exitStatuses(self) -> None:
        """0-63 and 255 are the status; 64-254 report an errno (64 itself
        reports none: success); EACCES reads as -ENOEXEC (disabled)."""
        cases = {
            0: 0,
            1: 1,
            63: 63,
            64: 0,
            65: -errno.EPERM,
            64 + errno.ENOENT: -errno.ENOENT,
            64 + errno.EACCES: -errno.ENOEXEC,
            254: -190,
            255: 255,
        }
        for code, summary in cases.items():
            result = ProcResult.fromWaitStatus(code << 8)
            self.assertEqual(result.summary(), summary, code)

    def test_signalled(self) -> None:
        """A process killed by a signal is -EINTR."""
        result = ProcResult.fromWaitStatus(signal.SIGKILL)
        self.assertEqual(result, ProcResult(sig=signal.SIGKILL))
        self.assertEqual(result.summary(), -errno.EINTR)


class RunnerCase(TestCase):
    """An events directory and an L{EventContext} on it, stopped at the
    end; PIDs the scripts record are killed at the end if still there."""

    timeout = 60

    def setUp(self) -> None:
        self.dir = ScriptsDir(self)
        self.pids: list[int] = []
        self.addCleanup(lambda: killRecorded(self.pids))
        self.context = self.makeContext()

    def makeContext(self, **kw: Any) -> EventContext:
        kw.setdefault("killGrace", 1.0)
        env = dict(os.environ)
        env["TXCTDB_TEST_VAR"] = "hello there"
        env["CTDB_BASE"] = self.dir.base
        context = EventContext(
            reactor=REACTOR, eventsDir=self.dir.events, environment=env, **kw
        )
        self.addCleanup(context.stop)
        return context

    def runEvent(
        self,
        event: str,
        args: str | None = None,
        timeout: int = 20,
        flags: int = 0,
        component: str = "legacy",
        context: EventContext | None = None,
    ) -> defer.Deferred[int]:
        ctx = context or self.context
        return ctx.run(RequestRun(component, event, args, timeout, flags))

    def status(self, event: str, component: str = "legacy") -> EventResult | None:
        return self.context.lastResult(component, event)

    def output(self, event: str, index: int) -> bytes:
        result = self.status(event)
        assert result is not None
        out = result.scripts[index].output
        assert out is not None
        return out


class OrderAndArgumentsTests(RunnerCase):
    """Scripts run in name order with ctdbd's arguments and environment."""

    async def test_orderAndArguments(self) -> None:
        """Only NN.name.script entries run, in byte order of their names,
        each with the event and the arguments split at spaces."""
        log = self.dir.path("log")
        for name in ("10.b", "01.a", "99.z", "10.B"):
            self.dir.script(name, f'echo "{name} $*" >> {log}\n')
        self.dir.script("1.bad", f"echo bad >> {log}\n")
        self.dir.script("01.a.sh", f"echo bad >> {log}\n", component=None)
        os.rename(self.dir.dir() + "/01.a.sh.script", self.dir.dir() + "/01.a.sh")
        result = await self.runEvent("takeip", "eth0  10.0.0.1 24 ")
        self.assertEqual(result, 0)
        self.assertEqual(
            self.dir.read("log").splitlines(),
            [
                "01.a takeip eth0 10.0.0.1 24",
                "10.B takeip eth0 10.0.0.1 24",
                "10.b takeip eth0 10.0.0.1 24",
                "99.z takeip eth0 10.0.0.1 24",
            ],
        )
        status = self.status("takeip")
        assert status is not None
        self.assertEqual(
            [s.name for s in status.scripts], ["01.a", "10.B", "10.b", "99.z"]
        )
        self.assertEqual(status.summary, 0)
        for s in status.scripts:
            self.assertLessEqual(s.begin, s.end)

    async def test_noArguments(self) -> None:
        """Without arguments a script gets only the event."""
        self.dir.script("01.a", 'echo "$# $1"\n')
        self.assertEqual(await self.runEvent("monitor"), 0)
        self.assertEqual(self.output("monitor", 0), b"1 monitor\n")

    async def test_environmentAndProcessGroup(self) -> None:
        """A script gets the daemon's environment, stdin from /dev/null,
        stdout and stderr on one pipe in order, a process group of its own,
        and SIGPIPE ignored (as ctdbd passes it on)."""
        self.dir.script(
            "01.env",
            'echo "var=$TXCTDB_TEST_VAR base=$CTDB_BASE"\n'
            "echo to-stderr >&2\n"
            "echo after\n"
            "read line && echo read-something\n"
            'stat=$(cat /proc/$$/stat); set -- ${stat##*) }; echo "pgrp-is-pid=$(( $3 == $$ ))"\n'
            "ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status)\n"
            'echo "sigpipe-ignored=$(( (0x$ign >> 12) & 1 ))"\n',
        )
        self.assertEqual(await self.runEvent("monitor"), 0)
        self.assertEqual(
            self.output("monitor", 0).decode(),
            f"var=hello there base={self.dir.base}\nto-stderr\nafter\n"
            "pgrp-is-pid=1\nsigpipe-ignored=1\n",
        )

    async def test_noScripts(self) -> None:
        """An event with no scripts succeeds, with an empty status."""
        self.assertEqual(await self.runEvent("startup"), 0)
        self.assertEqual(self.status("startup"), EventResult(0, []))


class FailureTests(RunnerCase):
    """Scripts that fail, cannot run, or are disabled."""

    async def test_nonZeroExitStopsTheEvent(self) -> None:
        """A script exiting 3 fails the event (ENOEXEC); the scripts after
        it do not run and are not in the status."""
        log = self.dir.path("log")
        self.dir.script("01.ok", f"echo 01 >> {log}\n")
        self.dir.script("02.fail", "echo failing; exit 3\n")
        self.dir.script("03.after", f"echo 03 >> {log}\n")
        self.assertEqual(await self.runEvent("monitor"), errno.ENOEXEC)
        self.assertEqual(self.dir.read("log"), "01\n")
        status = self.status("monitor")
        assert status is not None
        self.assertEqual(status.summary, 3)
        self.assertEqual(
            [(s.name, s.summary) for s in status.scripts],
            [("01.ok", 0), ("02.fail", 3)],
        )
        self.assertEqual(status.scripts[1].output, b"failing\n")

    async def test_runAll(self) -> None:
        """With CTDB_EVENT_RUN_ALL every script runs; the summary is the
        last failure's."""
        log = self.dir.path("log")
        self.dir.script("01.fail", "exit 2\n")
        self.dir.script("02.fail", "exit 4\n")
        self.dir.script("03.after", f"echo 03 >> {log}\n")
        self.assertEqual(
            await self.runEvent("monitor", flags=CTDB_EVENT_RUN_ALL), errno.ENOEXEC
        )
        self.assertEqual(self.dir.read("log"), "03\n")
        status = self.status("monitor")
        assert status is not None
        self.assertEqual([s.summary for s in status.scripts], [2, 4, 0])
        self.assertEqual(status.summary, 4)

    async def test_oddExitCodes(self) -> None:
        """Exit statuses as run_proc reads them: 64 is success, 65-254
        an errno, 255 itself, a signal -EINTR."""
        cases = [
            ("exit 64", 0),
            ("exit 65", -errno.EPERM),
            ("exit 126", -62),
            ("exit 255", 255),
            ("kill -9 $$", -errno.EINTR),
            ("kill -TERM $$", -errno.EINTR),
        ]
        for body, summary in cases:
            self.dir.script("01.odd", body + "\n")
            expected = 0 if summary == 0 else errno.ENOEXEC
            self.assertEqual(await self.runEvent("monitor"), expected, body)
            status = self.status("monitor")
            assert status is not None
            self.assertEqual(status.scripts[0].summary, summary, body)

    async def test_disabledScript(self) -> None:
        """A script that is not executable is skipped (-ENOEXEC, shown as
        disabled) and the event goes on."""
        log = self.dir.path("log")
        self.dir.script("01.off", f"echo off >> {log}\n", mode=0o644)
        self.dir.script("02.on", f"echo on >> {log}\n")
        self.assertEqual(await self.runEvent("monitor"), 0)
        self.assertEqual(self.dir.read("log"), "on\n")
        status = self.status("monitor")
        assert status is not None
        self.assertEqual([s.summary for s in status.scripts], [-errno.ENOEXEC, 0])

    async def test_missingScript(self) -> None:
        """A dangling link cannot run (-ENOENT) and fails the event."""
        os.symlink(self.dir.path("nowhere"), self.dir.dir() + "/01.gone.script")
        self.dir.script("02.after", "exit 0\n")
        self.assertEqual(await self.runEvent("monitor"), errno.ENOEXEC)
        status = self.status("monitor")
        assert status is not None
        self.assertEqual(
            [(s.name, s.summary) for s in status.scripts], [("01.gone", -errno.ENOENT)]
        )

    async def test_badInterpreter(self) -> None:
        """A script whose interpreter is missing fails as its exec did
        (-ENOENT), with no output, like 4.17's child exiting 64 + errno."""
        self.dir.script("01.bad", "exit 0\n", shebang="#!/nonexistent/shell\n")
        self.assertEqual(await self.runEvent("monitor"), errno.ENOEXEC)
        status = self.status("monitor")
        assert status is not None
        self.assertEqual(status.scripts[0].summary, -errno.ENOENT)
        self.assertIsNone(status.scripts[0].output)

    async def test_missingDirectory(self) -> None:
        """No such component: ENOENT for run and status; a component whose
        directory goes away: ENOENT for run, its old status stays."""
        self.assertEqual(
            await self.runEvent("monitor", component="nosuch"), errno.ENOENT
        )
        self.assertEqual(
            self.context.status(RequestStatus("nosuch", "monitor")),
            (errno.ENOENT, None),
        )
        self.dir.write("events/file")
        self.assertEqual(
            await self.runEvent("monitor", component="file"), errno.ENOTDIR
        )
        self.assertEqual(
            await self.runEvent("monitor", component="../events"), errno.ENOENT
        )
        self.dir.script("01.a", "exit 0\n")
        self.assertEqual(await self.runEvent("monitor"), 0)
        os.unlink(self.dir.dir() + "/01.a.script")
        os.rmdir(self.dir.dir())
        self.assertEqual(await self.runEvent("monitor"), errno.ENOENT)
        self.assertEqual(self.context.status(RequestStatus("legacy", "monitor"))[0], 0)

    async def test_neverRun(self) -> None:
        """The status of an event that never ran is EINVAL."""
        self.assertEqual(
            self.context.status(RequestStatus("legacy", "monitor")),
            (errno.EINVAL, None),
        )


class OutputTests(RunnerCase):
    """What scripts print is kept, bounded, byte for byte."""

    async def test_megabytes(self) -> None:
        """A script printing 8 MB: the event succeeds, the first
        MAX_OUTPUT bytes are kept with a note of the rest, and the daemon
        goes on running events."""
        self.dir.script("01.loud", "head -c 8000000 /dev/zero | tr '\\0' x\necho\n")
        self.assertEqual(await self.runEvent("monitor"), 0)
        out = self.output("monitor", 0)
        self.assertTrue(out.startswith(b"x" * MAX_OUTPUT), out[:100])
        self.assertTrue(
            out.endswith(
                b"\n[%d more bytes of output dropped]\n" % (8000001 - MAX_OUTPUT)
            )
        )
        self.assertLess(len(out), MAX_OUTPUT + 100)
        self.dir.script("01.loud", "echo quiet\n")
        self.assertEqual(await self.runEvent("monitor"), 0)
        self.assertEqual(self.output("monitor", 0), b"quiet\n")

    async def test_garbage(self) -> None:
        """Bytes that are not UTF-8 are kept as they are; NUL bytes go (C
        strings)."""
        self.dir.script("01.junk", "printf '\\377\\376a\\000b\\200\\n'; exit 1\n")
        self.assertEqual(await self.runEvent("monitor"), errno.ENOEXEC)
        self.assertEqual(self.output("monitor", 0), b"\xff\xfeab\x80\n")
        status = self.status("monitor")
        assert status is not None
        wire = status.toReplyStatus().scripts[0].output
        assert wire is not None
        self.assertEqual(wire.encode("utf-8", "surrogateescape"), b"\xff\xfeab\x80\n")

    async def test_daemonLeftRunning(self) -> None:
        """A script that starts a daemon (holding the output pipe) and
        exits ends the event at once, with the output so far; the daemon
        goes on, as 4.17 leaves it."""
        pidfile = self.dir.path("daemon.pid")
        self.dir.script(
            "01.forks",
            '[ "$1" = startup ] || exit 0\n'
            "(echo daemon-started; sleep 300; echo late) &\n"
            f"echo $$ $! > {pidfile}\n"
            "sleep 0.2\n"
            "echo done\n",
        )
        self.assertEqual(await self.runEvent("startup", timeout=10), 0)
        script, daemon = readPids(pidfile)
        # the daemon and its sleep are in the script's process group
        self.addCleanup(killGroup, script)
        self.assertTrue(gone(script))
        self.assertFalse(gone(daemon))
        self.assertEqual(self.output("startup", 0), b"daemon-started\ndone\n")
        self.assertEqual(await self.runEvent("monitor"), 0)


class TimeoutTests(RunnerCase):
    """A script past the event's deadline."""

    async def test_hungScriptAndChildrenKilled(self) -> None:
        """The event ends with ETIMEDOUT at the deadline, with the output
        so far; the debug script runs with the hung script's pid and the
        event while it still runs; then the script and its children (which
        ignore SIGTERM) are gone."""
        pids = self.dir.path("pids")
        debugLog = self.dir.path("debug.log")
        debug = self.dir.write(
            "debug.sh",
            "#!/bin/sh\n"
            f'echo "args: $*" >> {debugLog}\n'
            f'kill -0 "$1" && echo "alive" >> {debugLog}\n'
            "echo debug output line\n",
            mode=0o755,
        )
        context = self.makeContext(debugScript=debug)
        self.dir.script(
            "01.hang",
            f"trap '' TERM\n(trap '' TERM; sleep 300) &\necho $$ $! > {pids}\necho Sleeping...\nsleep 300\n",
        )
        self.dir.script("02.never", f"echo ran > {self.dir.path('never')}\n")
        result = await self.runEvent("monitor", timeout=1, context=context)
        self.assertEqual(result, errno.ETIMEDOUT)
        recorded = readPids(pids)
        self.pids += recorded
        self.assertEqual(len(recorded), 2)
        status = context.lastResult("legacy", "monitor")
        assert status is not None
        self.assertEqual(status.summary, -errno.ETIMEDOUT)
        self.assertEqual(
            [(s.name, s.summary) for s in status.scripts],
            [("01.hang", -errno.ETIMEDOUT)],
        )
        self.assertEqual(status.scripts[0].output, b"Sleeping...\n")
        await waitUntil(lambda: all(gone(p) for p in recorded))
        self.assertEqual(
            self.dir.read("debug.log"), f"args: {recorded[0]} monitor\nalive\n"
        )
        self.assertFalse(os.path.exists(self.dir.path("never")))
        await waitUntil(lambda: not context.processes())

    async def test_hungWithoutDebugScript(self) -> None:
        """With no debug script the hung script's group is killed all the
        same."""
        pids = self.dir.path("pids")
        self.dir.script("01.hang", f"sleep 300 &\necho $$ $! > {pids}\nsleep 300\n")
        self.assertEqual(await self.runEvent("monitor", timeout=1), errno.ETIMEDOUT)
        recorded = readPids(pids)
        self.pids += recorded
        self.assertEqual(len(recorded), 2)
        await waitUntil(lambda: all(gone(p) for p in recorded))

    async def test_deadlineIsTheEvents(self) -> None:
        """The timeout is for the whole event: a second script that starts
        after the first used the time up times out."""
        self.dir.script("01.slow", "sleep 1.5\n")
        self.dir.script("02.next", "sleep 1\n")
        self.assertEqual(await self.runEvent("monitor", timeout=2), errno.ETIMEDOUT)
        status = self.status("monitor")
        assert status is not None
        self.assertEqual([s.summary for s in status.scripts], [0, -errno.ETIMEDOUT])


class QueueTests(RunnerCase):
    """Events of a component run one at a time; monitor gives way."""

    async def test_monitorCancelledByAnotherEvent(self) -> None:
        """A new event cancels a running monitor (ECANCELED, its script
        killed, its status left as it was) and runs."""
        slow = self.dir.path("go-slow")
        self.dir.script(
            "01.a", f'[ "$1" = monitor ] && [ -e {slow} ] && exec sleep 300\nexit 0\n'
        )
        self.assertEqual(await self.runEvent("monitor"), 0)
        before = self.status("monitor")
        self.dir.write("go-slow")
        monitor = self.runEvent("monitor")
        await waitUntil(lambda: bool(self.context.processes()))
        proc = self.context.processes()[0]
        takeip = self.runEvent("takeip", "eth0 10.0.0.1 24")
        self.assertEqual(await monitor, errno.ECANCELED)
        self.assertEqual(await takeip, 0)
        self.assertIs(self.status("monitor"), before)
        assert proc.pid is not None
        pid = proc.pid
        await waitUntil(lambda: gone(pid))

    async def test_monitorRefusedWhileAnotherRuns(self) -> None:
        """A monitor asked for while another event runs is cancelled at
        once; the other goes on."""
        flag = self.dir.path("release")
        self.dir.script(
            "01.a",
            f'[ "$1" = startup ] && while [ ! -e {flag} ]; do sleep 0.05; done\nexit 0\n',
        )
        startup = self.runEvent("startup")
        await waitUntil(lambda: bool(self.context.processes()))
        self.assertEqual(await self.runEvent("monitor"), errno.ECANCELED)
        self.assertIsNone(self.status("monitor"))
        self.dir.write("release")
        self.assertEqual(await startup, 0)

    async def test_eventsQueue(self) -> None:
        """Two events run one after the other, in the order asked."""
        log = self.dir.path("log")
        self.dir.script(
            "01.a", f'echo "start $1" >> {log}; sleep 0.3; echo "end $1" >> {log}\n'
        )
        first = self.runEvent("takeip", "a b c")
        second = self.runEvent("releaseip", "a b c")
        self.assertEqual(await defer.gatherResults([first, second]), [0, 0])
        self.assertEqual(
            self.dir.read("log").splitlines(),
            ["start takeip", "end takeip", "start releaseip", "end releaseip"],
        )

    async def test_stopKillsScripts(self) -> None:
        """Stopping kills every running script's group and cancels what is
        queued."""
        pids = self.dir.path("pids")
        self.dir.script("01.a", f"sleep 300 &\necho $$ $! > {pids}\nwait\n")
        running = self.runEvent("startup")
        queued = self.runEvent("takeip", "a b c")
        await waitUntil(lambda: len(readPids(pids)) == 2)
        recorded = readPids(pids)
        self.pids += recorded
        self.context.stop()
        self.assertEqual(await running, errno.ECANCELED)
        self.assertEqual(await queued, errno.ECANCELED)
        self.assertEqual(await self.runEvent("monitor"), errno.ECANCELED)
        await waitUntil(lambda: all(gone(p) for p in recorded))


class ScriptCommandTests(RunnerCase):
    """The SCRIPT command: chmod of a script in the component."""

    async def test_enableDisable(self) -> None:
        """Disable clears the execute bits, enable sets them; the next run
        follows."""
        path = self.dir.script("01.a", "exit 0\n")
        self.assertEqual(
            self.context.script(RequestScript("legacy", "01.a", ScriptAction.DISABLE)),
            0,
        )
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        self.assertEqual(await self.runEvent("monitor"), 0)
        status = self.status("monitor")
        assert status is not None
        self.assertEqual(status.scripts[0].summary, -errno.ENOEXEC)
        self.assertEqual(
            self.context.script(
                RequestScript("legacy", "01.a.script", ScriptAction.ENABLE)
            ),
            0,
        )
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o755)
        self.assertEqual(
            self.context.script(RequestScript("legacy", "02.b", ScriptAction.ENABLE)),
            errno.ENOENT,
        )
        self.assertEqual(
            self.context.script(RequestScript("nosuch", "01.a", ScriptAction.ENABLE)),
            errno.ENOENT,
        )


class MisbehavingScriptTests(RunnerCase):
    """Scripts that do odd things to their pipe, their signals or their
    directory: the event gets the right answer, nothing hangs, and the
    next event runs."""

    async def test_stdoutClosedEarly(self) -> None:
        """A script that closes stdout and stderr and goes on is done when
        it exits, with what it printed before."""
        self.dir.script("01.closes", "echo before\nexec >&- 2>&-\nsleep 0.3\nexit 3\n")
        self.assertEqual(await self.runEvent("monitor"), errno.ENOEXEC)
        status = self.status("monitor")
        assert status is not None
        self.assertEqual(status.scripts[0].summary, 3)
        self.assertEqual(status.scripts[0].output, b"before\n")
        self.dir.script("01.closes", "exec >&- 2>&-\n")
        self.assertEqual(await self.runEvent("monitor"), 0)
        status = self.status("monitor")
        assert status is not None
        self.assertIsNone(status.scripts[0].output)

    async def test_writesAfterExit(self) -> None:
        """A child that writes to the pipe after the script exited (the
        pipe is closed by then) neither blocks nor gets into the next
        event's output."""
        done = self.dir.path("done")
        go = self.dir.path("go")
        self.dir.script(
            "01.late",
            '[ "$1" = startup ] || { echo second; exit 0; }\n'
            f"(while [ ! -e {go} ]; do sleep 0.05; done\n"
            f" echo late; echo late >&2; echo $? > {done}) &\n"
            "echo first\n",
        )
        self.assertEqual(await self.runEvent("startup"), 0)
        self.assertEqual(self.output("startup", 0), b"first\n")
        self.dir.write("go")
        await waitUntil(lambda: os.path.exists(done) and bool(self.dir.read("done")))
        # echo failed (EPIPE, SIGPIPE ignored as 4.17's scripts find it)
        self.assertNotEqual(self.dir.read("done").strip(), "0")
        self.assertEqual(await self.runEvent("monitor"), 0)
        self.assertEqual(self.output("monitor", 0), b"second\n")
        self.assertEqual(self.output("startup", 0), b"first\n")

    async def test_ignoresTerm(self) -> None:
        """A hung script that ignores SIGTERM is gone after the grace
        period (SIGKILL to its group)."""
        pids = self.dir.path("pids")
        self.dir.script("01.stubborn", f"trap '' TERM\necho $$ > {pids}\nsleep 300\n")
        self.assertEqual(await self.runEvent("monitor", timeout=1), errno.ETIMEDOUT)
        recorded = readPids(pids)
        self.pids += recorded
        self.assertEqual(len(recorded), 1)
        await waitUntil(lambda: gone(recorded[0]))
        await waitUntil(lambda: not self.context.processes())

    async def test_exit255AndSignals(self) -> None:
        """255 is a failure of its own; a script that kills itself with
        a signal is -EINTR; SIGPIPE is ignored, as 4.17's scripts inherit
        it; none of them ends the daemon's next event."""
        for body, summary in [
            ("exit 255", 255),
            ("kill -SEGV $$", -errno.EINTR),
            ("kill -INT $$", -errno.EINTR),
            ("kill -ABRT $$", -errno.EINTR),
            ("kill -PIPE $$", 0),
        ]:
            self.dir.script("01.odd", body + "\n")
            expected = errno.ENOEXEC if summary else 0
            self.assertEqual(await self.runEvent("monitor"), expected, body)
            status = self.status("monitor")
            assert status is not None
            self.assertEqual(status.scripts[0].summary, summary, body)
        self.dir.script("01.odd", "exit 0\n")
        self.assertEqual(await self.runEvent("monitor"), 0)

    async def test_directoryVanishesMidRun(self) -> None:
        """A script that removes its own component directory: the next
        script cannot be run (-ENOENT), the next event is ENOENT, and the
        component works again once the directory is back."""
        self.dir.script("01.remove", f"rm -rf {self.dir.dir()}\n")
        self.dir.script("02.next", "exit 0\n")
        self.assertEqual(await self.runEvent("monitor"), errno.ENOEXEC)
        status = self.status("monitor")
        assert status is not None
        self.assertEqual(
            [(s.name, s.summary) for s in status.scripts],
            [("01.remove", 0), ("02.next", -errno.ENOENT)],
        )
        self.assertEqual(await self.runEvent("monitor"), errno.ENOENT)
        os.makedirs(self.dir.dir())
        self.dir.script("01.back", "exit 0\n")
        self.assertEqual(await self.runEvent("monitor"), 0)

    async def test_debugScriptHangs(self) -> None:
        """A debug script that hangs itself is killed after its own
        timeout, then the hung script's group is ended; nothing is left."""
        pids = self.dir.path("pids")
        debugPids = self.dir.path("debug.pids")
        debug = self.dir.write(
            "debug.sh",
            f"#!/bin/sh\ntrap '' TERM\necho $$ > {debugPids}\nsleep 300\n",
            mode=0o755,
        )
        context = self.makeContext(debugScript=debug, debugTimeout=1.0)
        self.dir.script("01.hang", f"echo $$ > {pids}\nsleep 300\n")
        result = await self.runEvent("monitor", timeout=1, context=context)
        self.assertEqual(result, errno.ETIMEDOUT)
        await waitUntil(lambda: bool(readPids(debugPids)))
        recorded = readPids(pids) + readPids(debugPids)
        self.pids += recorded
        await waitUntil(lambda: all(gone(p) for p in recorded))
        await waitUntil(lambda: not context.processes())
        # the component is free for the next event
        self.dir.script("01.hang", "exit 0\n")
        self.assertEqual(await self.runEvent("monitor", context=context), 0)
