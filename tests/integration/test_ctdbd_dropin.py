# -*- test-case-name: tests.integration.test_ctdbd_dropin -*-
"""
The ``ctdbd`` console script as Samba's local_daemons.sh drives it: no
arguments, C{CTDB_BASE} and C{CTDB_TEST_MODE} in the environment, node
directories laid out as local_daemons.sh lays them out, Samba's ``ctdb``
tool.  Its event scripts run in our own event daemon (C{CTDB_EVENTD},
which names Samba's ctdb-eventd, is set as local_daemons.sh sets it, and
ignored).
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ctdb.daemon.memdump import memoryReport
from ctdb.testing import connectedNodes

from ._clusters import randomBase, tempDir

CTDBD = os.path.join(os.path.dirname(sys.executable), "ctdbd")
EVENTD = "/usr/libexec/ctdb/ctdb-eventd"


def writeNode(d: Path, addresses: list[str], pnn: int, extra: str = "") -> None:
    """One node directory, as local_daemons.sh setup writes it."""
    for sub in ("db/volatile", "db/persistent", "db/state", "events/legacy"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "nodes").write_text("".join(f"{a}\n" for a in addresses))
    (d / "public_addresses").write_text("")
    (d / "ctdb.conf").write_text(
        f"""[logging]
	location = file:{d}/log.ctdb
	log level = INFO
[cluster]
	node address = {addresses[pnn]}
[database]
	volatile database directory = {d}/db/volatile
	persistent database directory = {d}/db/persistent
	state database directory = {d}/db/state
[failover]
	disabled = true
{extra}"""
    )
    script = d / "events" / "legacy" / "00.test.script"
    script.write_text('#!/bin/sh\necho "$1 event"\n')
    script.chmod(0o755)


def nodeEnv(d: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTDB_")}
    env.update(CTDB_BASE=str(d), CTDB_TEST_MODE="yes", CTDB_EVENTD=EVENTD)
    return env


def killRecorded(d: Path) -> None:
    """SIGKILL the daemon of node directory C{d} by the PID in its pid file,
    if it is still running."""
    try:
        pid = int((d / "run" / "ctdbd.pid").read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def waitFor(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def runCtdbd(d: Path) -> subprocess.CompletedProcess[str]:
    """Run the drop-in ctdbd for node directory C{d}, as Samba's scripts do;
    it returns once the daemon is up (0) or refused to start (1)."""
    return subprocess.run(
        [CTDBD],
        env=nodeEnv(d),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def tool(d: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctdb", *args],
        env=nodeEnv(d),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class DropInTests(SynchronousTestCase):
    """The ctdbd script as local_daemons.sh starts it."""

    def nodes(self) -> list[Path]:
        """Two node directories on a random loopback range; any daemon left
        running is killed by the PID in its pid file when the test ends."""
        base = ipaddress.ip_address(randomBase("ours"))
        addresses = [str(base), str(base + 1)]
        top = Path(tempDir(self, "txctdb-di-"))
        dirs: list[Path] = []
        for pnn in range(2):
            d = top / f"node.{pnn}"
            writeNode(d, addresses, pnn)
            dirs.append(d)
            self.addCleanup(killRecorded, d)
        return dirs

    def test_startEventsShutdown(self) -> None:
        """ctdbd returns once its socket is up, with a 0700 socket and a pid
        file; the cluster forms; ctdb-eventd answers scriptstatus with the
        monitor event ctdbd ran, from our event daemon; ctdb shutdown stops it and the pid file and
        socket go away."""
        nodes = self.nodes()
        for d in nodes:
            start = time.monotonic()
            proc = runCtdbd(d)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertLess(time.monotonic() - start, 15)
            sock = d / "run" / "ctdbd.socket"
            self.assertTrue(stat.S_ISSOCK(sock.stat().st_mode))
            self.assertEqual(stat.S_IMODE(sock.stat().st_mode), 0o700)
            pid = int((d / "run" / "ctdbd.pid").read_text())
            self.assertTrue(os.path.exists(f"/proc/{pid}"))
            if sys.prefix != sys.base_prefix:
                # basics.004.getpid wants /proc/<pid>/exe to be called ctdbd
                self.assertEqual(
                    os.path.basename(os.readlink(f"/proc/{pid}/exe")), "ctdbd"
                )
            self.assertTrue((d / "run" / "eventd.socket").exists())
        self.assertTrue(
            waitFor(lambda: tool(nodes[0], "nodestatus", "all").returncode == 0, 30)
        )
        self.assertEqual(tool(nodes[1], "pnn").stdout.strip(), "1")

        def monitored() -> bool:
            out = tool(nodes[0], "scriptstatus").stdout
            return "00.test" in out and "OK" in out

        self.assertTrue(waitFor(monitored, 30), tool(nodes[0], "scriptstatus"))
        run = tool(nodes[0], "event", "run", "10", "legacy", "monitor")
        self.assertEqual(run.returncode, 0, run.stderr)
        for d in nodes:
            pid = int((d / "run" / "ctdbd.pid").read_text())
            done = tool(d, "shutdown")
            self.assertEqual(done.returncode, 0, done.stderr)

            def gone(pid: int = pid) -> bool:
                return not os.path.exists(f"/proc/{pid}")

            self.assertTrue(waitFor(gone, 15))
            self.assertFalse((d / "run" / "ctdbd.pid").exists())
            self.assertFalse((d / "run" / "ctdbd.socket").exists())

    def test_badConfigurationRefused(self) -> None:
        """A bad value stops ctdbd before it forks: exit 1, ctdbd's messages
        on stderr, nothing started."""
        d = Path(tempDir(self, "txctdb-di-")) / "node.0"
        writeNode(
            d,
            [randomBase("ours")],
            0,
            "[cluster]\n\tleader timeout = 0\n[nosuch]\n\tkey = 1\n",
        )
        self.addCleanup(killRecorded, d)
        proc = runCtdbd(d)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(
            proc.stderr.splitlines(),
            [
                "Invalid value for [cluster] -> leader timeout = 0",
                'conf: validation for option "leader timeout" failed',
                f"Failed to load configuration file {d}/ctdb.conf",
            ],
        )
        self.assertFalse((d / "run" / "ctdbd.pid").exists())

    def test_missingDatabaseDirectory(self) -> None:
        """A database directory that is gone: ctdbd's message, exit 1."""
        d = Path(tempDir(self, "txctdb-di-")) / "node.0"
        writeNode(d, [randomBase("ours")], 0)
        self.addCleanup(killRecorded, d)
        (d / "db" / "state").rmdir()
        proc = runCtdbd(d)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(
            f'state database directory "{d}/db/state" does not exist', proc.stderr
        )


class MemoryReportTests(SynchronousTestCase):
    """The DUMP_MEMORY report, on in-memory nodes."""

    def test_memoryReportFormat(self) -> None:
        """The DUMP_MEMORY answer matches the talloc report pattern Samba's
        debug.003.dumpmemory checks, line by line, and has at least 10 lines."""
        cluster = connectedNodes(3, Clock())
        cluster.databases(0).attach("locking.tdb", 0)
        cluster.client(0)
        daemon = cluster[0]
        pattern = re.compile(
            r"^(\s.+\s+contains\s+\d+ bytes in\s+\d+ blocks \(ref \d+\)\s+0x[0-9a-f]+"
            r"|\s+reference to: .+"
            r"|full talloc report on .+ \(total\s+\d+ bytes in \d+ blocks\))$"
        )
        lines = memoryReport(daemon).decode().splitlines()
        cluster.stop()
        self.assertGreaterEqual(len(lines), 10)
        self.assertTrue(any("struct ctdb_db_context" in line for line in lines))
        self.assertEqual([line for line in lines if not pattern.match(line)], [])
