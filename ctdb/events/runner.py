# -*- test-case-name: tests.events.test_runner -*-
"""
Running events, as Samba 4.17's event daemon does (ctdb/common/run_proc.c,
ctdb/common/run_event.c, ctdb/event/event_context.c and event_cmd.c), on
the reactor.

An event of a component runs the component's scripts (L{listScripts}) one
after the other, each as ``NN.name.script`` with the arguments
C{NN.name <event> <args...>} (the arguments split at spaces), the
daemon's environment, stdout and stderr on one pipe, in a process group of
its own.  A script that fails (non-zero status, killed, cannot be run)
ends the event unless the run asked for all (C{CTDB_EVENT_RUN_ALL}); a
disabled one is skipped and shows as such.  Every script of the event
must end by one deadline, the request's time plus its timeout.

What a script's end means, as C{run_proc} decodes it: killed by a signal
is -EINTR; an exit status of 64 to 254 is an errno the process reports
(C{64 + errno} is how the exec side reports a failed C{setpgid} or
C{execv}) and counts as -errno (-ENOEXEC for EACCES); any other exit
status is itself.  A script that is not there is -ENOENT, one that is not
executable is -ENOEXEC (disabled); past the deadline it is -ETIMEDOUT.

As 4.17, an event ends when its scripts' processes exit: a script that
started a daemon and exited is done even while the daemon holds the pipe
open (what the pipe has then is read, and it is closed), and the daemon
goes on living.  A script past its deadline is different: the event ends
with -ETIMEDOUT at once, with the output it had printed, and then, as 4.17
does, the debug script (C{[event] debug script}) runs with the hung
script's pid and the event name, and once it is done the hung script's
process group gets SIGTERM.  Unlike 4.17 (which leaves a hung script
running when there is no debug script, or one is already running), the
group is always signalled, and gets SIGKILL if anything of it is left
L{KILL_GRACE} seconds later.

Events of a component queue up, one running at a time, except that a new
event cancels a running C{monitor} (its scripts get SIGKILL, it ends with
ECANCELED and leaves no status), and a C{monitor} asked for while another
event runs is cancelled at once.  The last run of each event that was not
cancelled is kept per component (L{EventContext.status}).

A script's output is kept up to L{MAX_OUTPUT} bytes (the rest is read and
dropped, with a note at the end); it goes to the log, one line at a time
at error level, and into the event's status.  NUL bytes are dropped: the
status carries C strings.

The exec side is a few lines of Python run by this interpreter
(L{EXEC_HELPER}): it puts itself in a new process group, sets the signals
as a 4.17 script finds them (SIGPIPE ignored, as ctdbd ignores it and
passes that on), and execs the script, exiting with C{64 + errno} if it
cannot, exactly as C{run_proc}'s child.  (Twisted's spawnProcess cannot
make a process group itself.)
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IProcessTransport, IReadDescriptor
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ctdb.events.scripts import chmodScript, listScripts
from ctdb.interfaces import ICTDBReactor
from ctdb.protocols.event import (
    CTDB_EVENT_RUN_ALL,
    EventScript,
    ReplyStatus,
    RequestRun,
    RequestScript,
    RequestStatus,
    ScriptAction,
    Timeval,
)

#: bytes of a script's output kept for its status and the log
MAX_OUTPUT = 64 * 1024
#: seconds between SIGTERM and SIGKILL of a hung script's process group
KILL_GRACE = 5.0
#: the longest the debug script may take (4.17 waits for it forever)
DEBUG_TIMEOUT = 120.0
#: what the pipe may still hold when a script exits, read before closing
_DRAIN_LIMIT = 1 << 20

#: The exec side of a script's process: argv is C{path, argv0, args...}.
#: SIGPIPE stays ignored: 4.17's scripts inherit that from ctdbd (through
#: ctdb-eventd); SIGXFSZ, which Python ignores, is restored.
EXEC_HELPER = """\
import os, signal, sys
try:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    os.setpgid(0, 0)
    os.execv(sys.argv[1], sys.argv[2:])
except OSError as e:
    os._exit((64 + (e.errno or 5)) & 255)
except BaseException:
    os._exit(64 + 8)
"""

_log = Logger(namespace="ctdb.events")


def _timeval(seconds: float) -> Timeval:
    sec = int(seconds)
    return sec, round((seconds - sec) * 1e6) % 1000000


@dataclass(frozen=True, slots=True)
class ProcResult:
    """C{struct run_proc_result}: how a process ended."""

    sig: int = 0
    err: int = 0
    status: int = 0

    @classmethod
    def fromWaitStatus(cls, status: int) -> ProcResult:
        """As C{run_proc_signal_handler} decodes a wait status."""
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            if 64 <= code < 255:
                return cls(err=code - 64)
            return cls(status=code)
        if os.WIFSIGNALED(status):
            return cls(sig=os.WTERMSIG(status))
        return cls()

    def summary(self) -> int:
        """C{run_event_script_status}: -EINTR if killed, -errno if the
        process reported one (-ENOEXEC for EACCES), else its status."""
        if self.sig > 0:
            return -errno.EINTR
        if self.err > 0:
            return -errno.ENOEXEC if self.err == errno.EACCES else -self.err
        return self.status


@dataclass
class ScriptRun:
    """C{struct run_event_script}: one script of an event's run."""

    name: str
    begin: float = 0.0
    end: float = 0.0
    summary: int = 0
    output: bytes | None = None

    def toEventScript(self) -> EventScript:
        output = None
        if self.output is not None:
            output = self.output.decode("utf-8", "surrogateescape")
        return EventScript(
            self.name, _timeval(self.begin), _timeval(self.end), self.summary, output
        )


@dataclass
class EventResult:
    """C{struct run_event_script_list}: an event's run: its summary (0, or
    the result of the script that failed) and its scripts (up to the one
    that failed)."""

    summary: int = 0
    scripts: list[ScriptRun] = field(default_factory=list)

    def toReplyStatus(self) -> ReplyStatus:
        return ReplyStatus(self.summary, tuple(s.toEventScript() for s in self.scripts))


@dataclass(frozen=True, slots=True)
class ProcOutcome:
    """What L{ScriptProcess} reports: how it ended, its output (None if it
    printed nothing) and, if it was still running at its deadline, its pid."""

    result: ProcResult
    output: bytes | None
    pid: int | None = None


class _OutputBuffer:
    """The first L{MAX_OUTPUT} bytes of a process's output, counting the
    rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        self.dropped += max(len(data) - max(room, 0), 0)

    def value(self) -> bytes | None:
        if not self.kept and not self.dropped:
            return None
        out = bytes(self.kept).replace(b"\0", b"")
        if self.dropped:
            out += b"\n[%d more bytes of output dropped]\n" % self.dropped
        return out


@implementer(IReadDescriptor)
class _PipeReader:
    """The read end of a process's output pipe, read as data comes."""

    def __init__(self, reactor: ICTDBReactor, fd: int, sink: Callable[[bytes], None]):
        self.reactor = reactor
        self.fd: int | None = fd
        self.sink = sink
        os.set_blocking(fd, False)
        reactor.addReader(self)

    def fileno(self) -> int:
        return -1 if self.fd is None else self.fd

    def logPrefix(self) -> str:
        return "EventScriptOutput"

    def doRead(self) -> None:
        self._read(1)

    def _read(self, rounds: int) -> None:
        for _ in range(rounds):
            if self.fd is None:
                return
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError:
                self.close()
                return
            if not data:
                self.close()
                return
            self.sink(data)

    def drain(self) -> None:
        """Read what the pipe holds now (bounded), then close it."""
        self._read(_DRAIN_LIMIT // 65536)
        self.close()

    def connectionLost(self, reason: Failure) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is None:
            return
        self.reactor.removeReader(self)
        fd, self.fd = self.fd, None
        os.close(fd)


class ScriptProcess(ProcessProtocol):
    """
    One process as C{run_proc} runs it: checked (there, executable by its
    owner) before it starts, started in a process group of its own with
    stdout and stderr on one pipe and stdin on /dev/null, reported once
    (L{outcome}) when it exits or when its deadline passes, whichever is
    first.  The process group can be signalled until the process is reaped
    (and for what is left of the group after that).
    """

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        path: str,
        argv: list[str],
        environment: Mapping[str, str],
        deadline: float | None,
        python: str = sys.executable,
        maxOutput: int = MAX_OUTPUT,
    ) -> None:
        self.reactor = reactor
        self.path = path
        self.argv = argv
        self.environment = dict(environment)
        self.deadline = deadline
        self.python = python
        self.outcome: defer.Deferred[ProcOutcome] = defer.Deferred()
        self.pid: int | None = None
        #: reaped (or never started)
        self.exited = False
        self.timedOut = False
        self._output = _OutputBuffer(maxOutput)
        self._reader: _PipeReader | None = None
        self._timer: IDelayedCall | None = None
        self._killTimer: IDelayedCall | None = None
        self._transport: IProcessTransport | None = None
        self._endWaiters: list[defer.Deferred[None]] = []

    def start(self) -> defer.Deferred[ProcOutcome]:
        """Start it; returns L{outcome}.  Fails with C{OSError} if it
        cannot be started at all (C{run_proc}'s errors)."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            self.exited = True
            return self._report(ProcResult(err=e.errno or errno.EIO))
        if not st.st_mode & stat.S_IXUSR:
            self.exited = True
            return self._report(ProcResult(err=errno.EACCES))
        rfd, wfd = os.pipe()
        try:
            nullfd = os.open(os.devnull, os.O_RDONLY)
        except OSError:
            os.close(rfd)
            os.close(wfd)
            raise
        try:
            self._transport = self.reactor.spawnProcess(
                self,
                self.python,
                [self.python, "-I", "-S", "-c", EXEC_HELPER, self.path, *self.argv],
                env=self.environment,
                childFDs={0: nullfd, 1: wfd, 2: wfd},
            )
        except BaseException:
            os.close(rfd)
            self.exited = True
            raise
        finally:
            os.close(wfd)
            os.close(nullfd)
        self.pid = self._transport.pid
        self._reader = _PipeReader(self.reactor, rfd, self._output.add)
        if self.deadline is not None:
            delay = max(self.deadline - self.reactor.seconds(), 0.0)
            self._timer = self.reactor.callLater(delay, self._deadlinePassed)
        return self.outcome

    def _report(
        self, result: ProcResult, pid: int | None = None
    ) -> defer.Deferred[ProcOutcome]:
        if not self.outcome.called:
            self.outcome.callback(ProcOutcome(result, self._output.value(), pid))
        return self.outcome

    def _deadlinePassed(self) -> None:
        """C{run_proc_timedout}: report -ETIMEDOUT with the pid of the
        process, which goes on running until someone signals it."""
        self._timer = None
        if self.exited or self.outcome.called:
            return
        self.timedOut = True
        self._report(ProcResult(err=errno.ETIMEDOUT), self.pid)

    def processEnded(self, reason: Failure) -> None:
        """C{run_proc_signal_handler} and C{run_proc_done}: the process was
        reaped; read what its pipe still holds, close it, and report how it
        ended (if its deadline has not been reported already)."""
        status = getattr(reason.value, "status", None)
        self.exited = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._reader is not None:
            self._reader.drain()
            self._reader = None
        if isinstance(status, int):
            result = ProcResult.fromWaitStatus(status)
        else:
            result = ProcResult(sig=signal.SIGKILL)
        self._report(result)
        waiters, self._endWaiters = self._endWaiters, []
        for d in waiters:
            d.callback(None)

    def whenEnded(self) -> defer.Deferred[None]:
        """Fires once the process is reaped and its pipe closed."""
        if self.exited:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._endWaiters.append(d)
        return d

    # -- signalling the group ----------------------------------------------------

    def signalGroup(self, sig: int) -> bool:
        """Send C{sig} to the process group; True if anything got it.
        Until the process is reaped it is signalled by its pid as well (it
        may not have made its group yet)."""
        if self.pid is None:
            return False
        hit = False
        try:
            os.killpg(self.pid, sig)
            hit = True
        except (ProcessLookupError, PermissionError):
            pass
        if not self.exited:
            try:
                os.kill(self.pid, sig)
                hit = True
            except (ProcessLookupError, PermissionError):
                pass
        return hit

    def terminate(self, grace: float) -> None:
        """SIGTERM to the group, and SIGKILL to what is left of it
        C{grace} seconds later."""
        if not self.signalGroup(signal.SIGTERM):
            return
        if self._killTimer is None or not self._killTimer.active():
            self._killTimer = self.reactor.callLater(grace, self.kill)

    def kill(self) -> None:
        """SIGKILL to the group at once."""
        if self._killTimer is not None and self._killTimer.active():
            self._killTimer.cancel()
        self._killTimer = None
        self.signalGroup(signal.SIGKILL)

    def pending(self) -> bool:
        """Whether this process still needs anything: reaping, or
        signalling what is left of its group."""
        if not self.exited:
            return True
        if self._killTimer is not None and self._killTimer.active():
            return True
        return self.timedOut and self.groupAlive()

    def groupAlive(self) -> bool:
        """Whether the process or anything of its group is still there."""
        if self.pid is None:
            return False
        if not self.exited:
            return True
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def _logOutput(prefix: str, output: bytes | None) -> None:
    """debug_log: each non-empty line of the output, at error level."""
    if not output:
        return
    for line in output.split(b"\n"):
        if line:
            _log.error(
                "{prefix}: {line}",
                prefix=prefix,
                line=line.decode("utf-8", "backslashreplace"),
            )


class _EventRun:
    """C{run_event_state}: one event of a component, script by script."""

    def __init__(
        self,
        component: ComponentEvents,
        event: str,
        args: str | None,
        deadline: float,
        continueOnFailure: bool,
    ) -> None:
        self.component = component
        self.event = event
        self.args = args
        self.deadline = deadline
        self.continueOnFailure = continueOnFailure
        self.result = EventResult()
        #: fires with (0, the result) or (an errno, None) when it cannot run
        self.done: defer.Deferred[tuple[int, EventResult | None]] = defer.Deferred()
        self.cancelled = False
        self.index = 0
        self.current: ScriptProcess | None = None
        self._argv: list[str] = [event]
        if args is not None:
            self._argv += [word for word in args.split(" ") if word]

    def start(self, scripts: list[ScriptRun]) -> None:
        """Run C{scripts} (the component's list, disabled ones included)
        from the first."""
        self.result.scripts = scripts
        self._runScript()

    def _runScript(self) -> None:
        """C{run_event_run_script}: start the script at L{index} with the
        event's arguments and deadline."""
        script = self.result.scripts[self.index]
        comp = self.component
        script.begin = comp.context.reactor.seconds()
        proc = comp.context.newProcess(
            path=f"{comp.directory}/{script.name}.script",
            argv=[script.name, *self._argv],
            deadline=self.deadline,
        )
        self.current = proc
        try:
            outcome = proc.start()
        except OSError as e:
            _log.error(
                "run_proc failed for {script}, ret={ret}",
                script=script.name,
                ret=e.errno,
            )
            self.current = None
            self._finish(e.errno or errno.EIO)
            return
        outcome.addCallback(self._scriptDone, script, proc)

    def _scriptDone(
        self, outcome: ProcOutcome, script: ScriptRun, proc: ScriptProcess
    ) -> None:
        """C{run_event_next_script}: record how the script ended; a failure
        ends the event (unless it runs all), a timed-out script gets the
        debug script or is signalled; otherwise the next script runs."""
        comp = self.component
        script.end = comp.context.reactor.seconds()
        self.current = None
        if self.cancelled:
            return
        script.output = outcome.output
        _logOutput(script.name, outcome.output)
        script.summary = outcome.result.summary()
        if script.summary not in (0, -errno.ENOEXEC):
            self.result.summary = script.summary
            timedOut = script.summary == -errno.ETIMEDOUT and outcome.pid is not None
            if not self.continueOnFailure:
                del self.result.scripts[self.index + 1 :]
                if timedOut:
                    comp.debugHung(self.event, proc)
                _log.info(
                    "{event} event {what}",
                    event=self.event,
                    what="timed out"
                    if script.summary == -errno.ETIMEDOUT
                    else "failed",
                )
                self._finish(0)
                return
            if timedOut:
                proc.terminate(comp.context.killGrace)
        self.index += 1
        if self.index >= len(self.result.scripts):
            self._finish(0)
            return
        self._runScript()

    def cancel(self) -> None:
        """C{run_event_cancel}: end now with -ECANCELED, killing the
        script that runs."""
        self.cancelled = True
        self.result.summary = -errno.ECANCELED
        if self.current is not None:
            self.current.kill()
            self.current = None
        self._finish(0)

    def _finish(self, error: int) -> None:
        """End the event, once: (0, the result), or (C{error}, None) when
        it could not run (C{tevent_req_error})."""
        if self.done.called:
            return
        self.component.runEnded(self)
        self.done.callback((error, None) if error else (0, self.result))


class ComponentEvents:
    """C{run_event_context}: the events of one component (a directory of
    scripts): the queue, the running event, the debug script."""

    def __init__(self, context: EventContext, name: str, directory: str) -> None:
        self.context = context
        self.name = name
        self.directory = directory
        self._queue: deque[_EventRun] = deque()
        #: the run that has the component (set while it runs scripts)
        self._active: _EventRun | None = None
        self.debugRunning = False
        self._pendingNext: IDelayedCall | None = None

    @property
    def running(self) -> _EventRun | None:
        """The event running scripts now (C{current_req})."""
        if self._active is not None and self._active.result.scripts:
            return self._active
        return None

    def run(
        self, event: str, args: str | None, deadline: float, continueOnFailure: bool
    ) -> defer.Deferred[tuple[int, EventResult | None]]:
        """C{run_event_send}: queue C{event}; fires with (0, its result)
        or (an errno, None)."""
        if self.context.stopped:
            return defer.succeed((0, EventResult(-errno.ECANCELED)))
        current = self.running
        if current is not None:
            if current.event == "monitor":
                current.cancel()
            elif event == "monitor":
                return defer.succeed((0, EventResult(-errno.ECANCELED)))
        run = _EventRun(self, event, args, deadline, continueOnFailure)
        self._queue.append(run)
        if self._active is None:
            self._next()
        return run.done

    def _next(self) -> None:
        """The queue's trigger: start the oldest queued event while none
        holds the component."""
        while self._active is None and self._queue and not self.context.stopped:
            run = self._queue.popleft()
            self._active = run
            self._trigger(run)

    def _trigger(self, run: _EventRun) -> None:
        """C{run_event_trigger}: the scripts as they are now, then the first."""
        _log.debug(
            'Running event {event} with args "{args}"',
            event=run.event,
            args="(null)" if run.args is None else run.args,
        )
        try:
            scripts = listScripts(self.directory)
        except OSError as e:
            if isinstance(e, FileNotFoundError):
                _log.warn("event script dir {dir} removed", dir=self.directory)
            else:
                _log.warn(
                    "failed to get script list for {dir}, ret={ret}",
                    dir=self.directory,
                    ret=e.errno,
                )
            run._finish(e.errno or errno.EIO)
            return
        if not scripts:
            run._finish(0)
            return
        run.start(
            [
                ScriptRun(s.name, summary=0 if s.enabled else -errno.ENOEXEC)
                for s in scripts
            ]
        )

    def stop(self) -> None:
        """Cancel the running event and those queued."""
        queued, self._queue = list(self._queue), deque()
        for run in queued:
            run.result.summary = -errno.ECANCELED
            run.cancelled = True
            run.done.callback((0, run.result))
        active = self._active
        if active is not None:
            active.cancel()
        if self._pendingNext is not None and self._pendingNext.active():
            self._pendingNext.cancel()
        self._pendingNext = None

    def runEnded(self, run: _EventRun) -> None:
        """C{run_event_stop_running}: C{run} no longer holds the component
        (or leaves the queue); the next queued event starts in a later
        reactor turn."""
        if self._active is run:
            self._active = None
            # the next event starts in a later turn, as tevent_queue's
            # trigger: the one that ended reports first
            if self._queue and not self.context.stopped:
                pending = self._pendingNext
                if pending is None or not pending.active():
                    self._pendingNext = self.context.reactor.callLater(0, self._next)
        elif run in self._queue:
            self._queue.remove(run)

    def debugHung(self, event: str, proc: ScriptProcess) -> None:
        """C{run_debug_send}: run the debug script on a hung script (its
        pid and the event), then SIGTERM its group; with no debug script,
        or one already running, signal the group at once."""
        grace = self.context.killGrace
        debugScript = self.context.debugScript
        if debugScript is None or self.debugRunning or proc.pid is None:
            proc.terminate(grace)
            return
        debug = self.context.newProcess(
            path=debugScript,
            argv=[debugScript, str(proc.pid), event],
            deadline=self.context.reactor.seconds() + self.context.debugTimeout,
        )
        _log.debug(
            'Running debug {prog} with args "{pid} {event}"',
            prog=debugScript,
            pid=proc.pid,
            event=event,
        )
        try:
            outcome = debug.start()
        except OSError as e:
            _log.info("Failed to run event debug: {err}", err=e)
            proc.terminate(grace)
            return
        self.debugRunning = True

        def debugged(result: ProcOutcome) -> None:
            self.debugRunning = False
            if result.pid is not None:
                debug.kill()
            _logOutput("event_debug", result.output)
            proc.terminate(grace)

        outcome.addCallback(debugged)


class EventContext:
    """
    C{struct event_context} and the commands of C{event_cmd.c}: the
    components of an events directory, the last result of each of their
    events, and the processes still to be accounted for.  L{handle} answers
    one request of the event protocol.
    """

    def __init__(
        self,
        *,
        reactor: ICTDBReactor,
        eventsDir: str,
        debugScript: str | None = None,
        environment: Mapping[str, str] | None = None,
        python: str = sys.executable,
        maxOutput: int = MAX_OUTPUT,
        killGrace: float = KILL_GRACE,
        debugTimeout: float = DEBUG_TIMEOUT,
    ) -> None:
        self.reactor = reactor
        self.eventsDir = eventsDir.rstrip("/") or "/"
        self.debugScript = debugScript
        self.environment = dict(os.environ if environment is None else environment)
        self.python = python
        self.maxOutput = maxOutput
        self.killGrace = killGrace
        self.debugTimeout = debugTimeout
        self._components: dict[str, ComponentEvents] = {}
        self._results: dict[tuple[str, str], EventResult] = {}
        #: processes whose group may still need signalling at stop
        self._processes: set[ScriptProcess] = set()
        self.stopped = False

    def newProcess(
        self, *, path: str, argv: list[str], deadline: float | None
    ) -> ScriptProcess:
        """C{run_proc_send}'s process, in this context's environment, kept
        so that L{stop} can signal it (C{run_proc_context}'s list)."""
        proc = ScriptProcess(
            reactor=self.reactor,
            path=path,
            argv=argv,
            environment=self.environment,
            deadline=deadline,
            python=self.python,
            maxOutput=self.maxOutput,
        )
        self._processes = {p for p in self._processes if p.pending()}
        self._processes.add(proc)
        return proc

    def component(self, name: str | None) -> ComponentEvents | int:
        """C{eventd_component_add}: the component C{name}, or the errno of
        its directory (ENOENT, ENOTDIR, ...).  A name that would leave the
        events directory is no component (ENOENT)."""
        if name is None:
            return errno.EINVAL
        comp = self._components.get(name)
        if comp is not None:
            return comp
        if not name or "/" in name or name in (".", ".."):
            return errno.ENOENT
        directory = f"{self.eventsDir}/{name}"
        try:
            st = os.stat(directory)
        except OSError as e:
            return e.errno or errno.EIO
        if not stat.S_ISDIR(st.st_mode):
            return errno.ENOTDIR
        comp = ComponentEvents(self, name, directory)
        self._components[name] = comp
        return comp

    # -- the commands ----------------------------------------------------------------

    def run(self, request: RequestRun) -> defer.Deferred[int]:
        """C{event_cmd_run}: the reply's result: 0, ETIMEDOUT, ENOEXEC (a
        script failed), ECANCELED, or the errno of what stopped it."""
        comp = self.component(request.component)
        if isinstance(comp, int):
            return defer.succeed(comp)
        if request.event is None:
            return defer.succeed(errno.EINVAL)
        event = request.event
        deadline = self.reactor.seconds() + request.timeout
        d = comp.run(
            event, request.args, deadline, bool(request.flags & CTDB_EVENT_RUN_ALL)
        )

        def done(answer: tuple[int, EventResult | None]) -> int:
            error, result = answer
            if error or result is None:
                return error or errno.EIO
            if result.summary == -errno.ECANCELED:
                return errno.ECANCELED
            self._results[(comp.name, event)] = result
            if result.summary == -errno.ETIMEDOUT:
                return errno.ETIMEDOUT
            if result.summary != 0:
                return errno.ENOEXEC
            return 0

        return d.addCallback(done)

    def status(self, request: RequestStatus) -> tuple[int, ReplyStatus | None]:
        """C{event_cmd_status}: (0, the last run of the event), or (ENOENT:
        no such component, EINVAL: the event never ran; None)."""
        comp = self.component(request.component)
        if isinstance(comp, int):
            return comp, None
        result = self.lastResult(comp.name, request.event)
        if result is None:
            return errno.EINVAL, None
        return 0, result.toReplyStatus()

    def script(self, request: RequestScript) -> int:
        """C{event_cmd_script}: enable or disable a script of a component
        (L{chmodScript}); 0 or an errno."""
        comp = self.component(request.component)
        if isinstance(comp, int):
            return comp
        if request.script is None:
            return errno.EINVAL
        return chmodScript(
            comp.directory, request.script, request.action == ScriptAction.ENABLE
        )

    def lastResult(self, component: str, event: str | None) -> EventResult | None:
        """The last run of C{event} of C{component} that was not cancelled."""
        if event is None:
            return None
        return self._results.get((component, event))

    # -- stopping ----------------------------------------------------------------------

    def stop(self) -> defer.Deferred[None]:
        """C{run_proc_context_destructor}: SIGKILL to every script still
        running (or hung) and the debug script; the running and queued
        events end with ECANCELED.  Fires once the processes are reaped."""
        self.stopped = True
        for comp in self._components.values():
            comp.stop()
        waits = []
        for proc in list(self._processes):
            if proc.pending():
                proc.kill()
            waits.append(proc.whenEnded())
        self._processes.clear()
        return defer.gatherResults(waits).addCallback(lambda _: None)

    def processes(self) -> list[ScriptProcess]:
        """The processes started and not yet reaped (tests look at them)."""
        return [p for p in self._processes if not p.exited]
