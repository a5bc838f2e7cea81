# -*- test-case-name: tests.integration.test_clustered_samba -*-
"""
A clustered Samba file server on a local cluster: one Debian smbd per node
with C{clustering = yes}, pointed at that node's daemon socket, bound to
that node's address, all serving one directory that stands in for the
cluster file system (``ctdb-cluster --dir D samba start``).

Each smbd gets its own directory C{D/nodeK/samba} (smb.conf, its lock,
state, cache and private directories, C{log.smbd}) and is tracked by the
PID recorded in C{smbd.pid} there.  The settings that would let several
smbds on one machine coordinate through the kernel (posix locking, kernel
share modes, kernel oplocks, kernel change notify) are off, so that only
CTDB keeps the nodes coherent; with C{clustering=False} nothing does.

Works on any cluster whose class has the L{ctdb.cluster.NodeLayout} layout
and C{address(pnn)}/C{size}: ours, or the test harnesses of Samba's real
ctdbd and of mixed clusters (C{tests/support/} in the source tree).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import Protocol

from ctdb.errors import SambaError
from ctdb.processes import commandLine, isAlive, liveProcesses, tailFile

SMBD = "/usr/sbin/smbd"
SMB_PORT = 445
#: the NetBIOS name every node shares, as a clustered server must
NETBIOS_NAME = "TXCTDB"
SHARE = "data"


class _Layout(Protocol):
    """What we need of a cluster: its node directories and addresses."""

    @property
    def size(self) -> int: ...

    def nodeDir(self, pnn: int) -> str: ...

    def socketPath(self, pnn: int) -> str: ...

    def address(self, pnn: int) -> str: ...


def smbConf(
    *,
    directory: str,
    address: str,
    ctdbSocket: str,
    share: str,
    clustering: bool = True,
    logLevel: int = 1,
) -> str:
    """The smb.conf of one node's smbd (see CLUSTERED_SAMBA in docs)."""
    d = directory
    return f"""\
[global]
clustering = {"yes" if clustering else "no"}
ctdbd socket = {ctdbSocket}
# IP/24: smbd binds the address even though it is not on an interface
interfaces = {address}/24
bind interfaces only = yes
smb ports = {SMB_PORT}
disable netbios = yes
server role = standalone server
netbios name = {NETBIOS_NAME}
workgroup = WORKGROUP
lock directory = {d}/lock
state directory = {d}/state
cache directory = {d}/cache
private dir = {d}/private
pid directory = {d}/pid
ncalrpc dir = {d}/ncalrpc
log file = {d}/log.smbd
log level = {logLevel}
map to guest = Bad User
load printers = no
disable spoolss = yes
rpc start on demand helpers = no
# nothing but CTDB may coordinate the nodes
kernel oplocks = no
kernel share modes = no
posix locking = no
kernel change notify = no

[{SHARE}]
path = {share}
guest ok = yes
read only = no
force user = root
"""


class ClusteredSamba:
    """One smbd per node of C{cluster}, sharing C{share}."""

    def __init__(
        self,
        cluster: _Layout,
        *,
        share: str | None = None,
        clustering: bool = True,
        smbd: str = SMBD,
        logLevel: int = 1,
    ) -> None:
        self.cluster = cluster
        self.share = share or os.path.join(os.path.dirname(cluster.nodeDir(0)), "share")
        self.clustering = clustering
        self.smbd = smbd
        self.logLevel = logLevel
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- layout ---------------------------------------------------------------

    def smbDir(self, pnn: int) -> str:
        return os.path.join(self.cluster.nodeDir(pnn), "samba")

    def confPath(self, pnn: int) -> str:
        return os.path.join(self.smbDir(pnn), "smb.conf")

    def pidFile(self, pnn: int) -> str:
        return os.path.join(self.smbDir(pnn), "smbd.pid")

    def logFile(self, pnn: int) -> str:
        return os.path.join(self.smbDir(pnn), "log.smbd")

    def address(self, pnn: int) -> str:
        return self.cluster.address(pnn)

    def configure(self, pnn: int) -> None:
        """Write node C{pnn}'s smb.conf and make its directories."""
        d = self.smbDir(pnn)
        for sub in ("lock", "state", "cache", "private", "pid", "ncalrpc"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.makedirs(self.share, exist_ok=True)
        with open(self.confPath(pnn), "w") as f:
            f.write(
                smbConf(
                    directory=d,
                    address=self.address(pnn),
                    ctdbSocket=self.cluster.socketPath(pnn),
                    share=self.share,
                    clustering=self.clustering,
                    logLevel=self.logLevel,
                )
            )

    # -- processes --------------------------------------------------------------

    def pid(self, pnn: int) -> int | None:
        """The recorded PID of node C{pnn}'s smbd, if it is still that smbd."""
        try:
            with open(self.pidFile(pnn)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        if self.confPath(pnn).encode() not in commandLine(pid) or not isAlive(pid):
            return None
        return pid

    def start(self, pnns: list[int] | None = None, timeout: float = 30.0) -> None:
        """Start the smbds of C{pnns} (default: every node) that are not
        running; returns once each accepts SMB connections on its address."""
        if not os.access(self.smbd, os.X_OK):
            raise SambaError(f"{self.smbd} is missing (apt-get install samba)")
        targets = list(range(self.cluster.size)) if not pnns else pnns
        deadline = time.monotonic() + timeout
        if not any(self.pid(k) is not None for k in range(self.cluster.size)):
            # The first smbd of a cluster records its version in g_lock.tdb
            # (smbd_claim_version: a shared g_lock, then an upgrade to
            # exclusive to write the version).  Several first smbds at once
            # all hold the shared lock and all try to upgrade: all but one
            # get NT_STATUS_POSSIBLE_DEADLOCK and exit ("already running").
            # So one starts alone; the others find its version and share.
            first = targets[0]
            self._spawn(first)
            self._waitListening(first, deadline)
        for k in targets:
            if self.pid(k) is None:
                self._spawn(k)
        for k in targets:
            self._waitListening(k, deadline)

    def _spawn(self, pnn: int) -> None:
        self.configure(pnn)
        # An exiting smbd signals its whole process group (killkids), so it
        # gets a session (and group) of its own: its PID is the group's id.
        args = [self.smbd, "-F", "--no-process-group", "-s", self.confPath(pnn)]
        with open(os.path.join(self.smbDir(pnn), "stdout.log"), "ab") as out:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with open(self.pidFile(pnn), "w") as f:
            f.write(f"{proc.pid}\n")
        self._children[pnn] = proc

    def _exited(self, pnn: int) -> bool:
        """Whether node C{pnn}'s smbd is gone.  A child we started is asked
        directly: just after a (v)fork and exec its command line may still
        read empty, which L{pid} would take for another process."""
        proc = self._children.get(pnn)
        if proc is not None:
            return proc.poll() is not None
        return self.pid(pnn) is None

    def _endGroup(self, pnn: int, timeout: float = 10.0) -> int | None:
        """Make sure the smbd we started for C{pnn} and its process group
        are gone (SIGKILL whatever is left of the group); its exit status."""
        proc = self._children.pop(pnn, None)
        if proc is None:
            return None
        _signalGroup(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while _groupAlive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return proc.returncode

    def _reap(self, pnn: int) -> None:
        proc = self._children.get(pnn)
        if proc is not None and proc.poll() is not None:
            del self._children[pnn]

    def _waitListening(self, pnn: int, deadline: float) -> None:
        address = self.address(pnn)
        while True:
            if self._exited(pnn):
                # An exiting smbd may leave children behind: wait until its
                # whole group is gone, so that a new start finds no
                # half-dead smbd holding its pid file.
                status = self._endGroup(pnn)
                raise SambaError(
                    f"smbd of node {pnn} exited (status {status}); see "
                    f"{self.logFile(pnn)}:\n" + self._tail(pnn)
                )
            try:
                with socket.create_connection((address, SMB_PORT), timeout=1):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SambaError(
                    f"smbd of node {pnn} is not listening on {address}:{SMB_PORT}"
                )
            time.sleep(0.05)

    def _tail(self, pnn: int, lines: int = 15) -> str:
        stdout = os.path.join(self.smbDir(pnn), "stdout.log")
        return tailFile(self.logFile(pnn), lines) + tailFile(stdout, lines)

    def running(self, pnn: int) -> bool:
        return not self._exited(pnn)

    def waitExited(self, pnn: int, timeout: float = 15.0) -> bool:
        """Wait until node C{pnn}'s smbd is gone (it exits by itself when its
        daemon dies); True if it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running(pnn):
                return True
            time.sleep(0.05)
        return False

    def stop(self, pnns: list[int] | None = None, timeout: float = 15.0) -> None:
        """Stop the smbds of C{pnns} (default: all) and everything in their
        process groups (the per-client smbds, notifyd, cleanupd)."""
        targets = list(range(self.cluster.size)) if not pnns else pnns
        groups = {}
        for k in targets:
            pid = self.pid(k)
            if pid is not None:
                groups[k] = pid
                _signalGroup(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while groups and time.monotonic() < deadline:
            for k, pgid in list(groups.items()):
                self._reap(k)
                if not _groupAlive(pgid):
                    del groups[k]
            time.sleep(0.05)
        for pgid in groups.values():
            _signalGroup(pgid, signal.SIGKILL)
        for k in targets:
            self._reap(k)
            try:
                os.unlink(self.pidFile(k))
            except FileNotFoundError:
                pass

    def status(self) -> str:
        lines = []
        for k in range(self.cluster.size):
            pid = self.pid(k)
            state = f"running (pid {pid})" if pid else "stopped"
            where = f"//{self.address(k)}/{SHARE}"
            lines.append(f"node{k} smbd {state} {where}")
        return "\n".join(lines)


def _groupAlive(pgid: int) -> bool:
    return bool(liveProcesses(pgrp=pgid))


def _signalGroup(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
