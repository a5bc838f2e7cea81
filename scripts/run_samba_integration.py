#!/usr/bin/env python3
# -*- test-case-name: tests.integration.test_ctdbd_dropin -*-
"""
Run the INTEGRATION suites of a Samba 4.17 source tree against txctdb's
``ctdbd`` (or, with ``--debian``, against Debian's /usr/sbin/ctdbd).

    scripts/run_samba_integration.py /path/to/samba-4.17.12
    scripts/run_samba_integration.py /path/to/samba-4.17.12 simple/basics.003.ping
    scripts/run_samba_integration.py --debian -T 120 /path/to/samba simple database

Nothing of Samba's is copied into this project: the tree's ``ctdb/tests`` and
``ctdb/config`` are copied into a temporary directory, where the runner makes
the fake build tree Samba's scripts look for (``ctdb/bin`` with symlinks to
the ``ctdbd`` under test, the installed ``ctdb``, ``onnode``, Samba's
helpers in /usr/libexec/ctdb, ``ltdbtool``, ``ping_pong`` and the test helper
programs) and runs each test with Samba's own ``tests/run_tests.sh`` and a
time limit.  The test helper programs are txctdb's (``python -m
ctdb.helpers DIR`` writes them into the work directory, never on PATH),
or those in ``--helpers-dir``.  Per-test results, then ``N passed, M failed``.  Exit status 0
if all passed.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
DEFAULT_SUITES = ("simple", "database")
SAMBA_HELPERS = "/usr/libexec/ctdb"
RESULT = re.compile(r"^TEST (PASSED|FAILED|ERROR|TIMEDOUT|SKIPPED): (\S+)")

#: Test helper programs Samba builds for its tests (tests/src); we link
#: whichever of them the helpers directory has.
TEST_HELPERS = (
    "dummy_client",
    "message_ring",
    "tunnel_test",
    "fetch_ring",
    "fetch_readonly",
    "update_record",
    "transaction_loop",
    "update_record_persistent",
    "ctdb-db-test",
    "fetch_loop",
    "fetch_loop_key",
    "g_lock_loop",
    "lock_tdb",
    "sigcode",
    "tunable_test",
    "porting_tests",
    "tdb_test",
)


def ourCtdbd() -> str:
    """The ``ctdbd`` console script next to this Python, else on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), "ctdbd")
    if os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("ctdbd")
    if found is None or found == "/usr/sbin/ctdbd":
        sys.exit("txctdb's ctdbd is not installed (pip install -e . in the venv)")
    return found


def txctdbPython(ctdbd: str | None) -> str | None:
    """
    A Python that imports txctdb: this one if it does, else the one named
    on the C{#!} line of our C{ctdbd} console script.
    """
    if importlib.util.find_spec("ctdb") is not None:
        return sys.executable
    if ctdbd is None:
        return None
    try:
        with open(ctdbd, "rb") as f:
            first = f.readline().decode(errors="replace")
    except OSError:
        return None
    if first.startswith("#!"):
        python = first[2:].split()[0]
        if os.access(python, os.X_OK):
            return python
    return None


def writeOurHelpers(python: str, directory: str) -> str:
    """txctdb's test helper programs, written into C{directory} (off PATH)."""
    subprocess.run(
        [python, "-m", "ctdb.helpers", directory],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return directory


def findTests(ctdbDir: str, specs: list[str]) -> list[str]:
    """Test paths relative to ctdb/, from suite names or suite/test names."""
    base = os.path.join(ctdbDir, "tests", "INTEGRATION")
    out: list[str] = []
    for spec in specs:
        spec = spec.rstrip("/")
        if os.path.isdir(os.path.join(base, spec)):
            out += sorted(
                os.path.relpath(p, ctdbDir)
                for p in glob.glob(os.path.join(base, spec, "*.sh"))
            )
            continue
        name = spec if spec.endswith(".sh") else spec + ".sh"
        path = os.path.join(base, name)
        if not os.path.isfile(path):
            sys.exit(f"no such test or suite: {spec}")
        out.append(os.path.relpath(path, ctdbDir))
    return out


def makeTree(samba: str, work: str, ctdbd: str, helpersDir: str | None) -> str:
    """Copy ctdb/tests and ctdb/config, build ctdb/bin; return the ctdb dir."""
    src = os.path.join(samba, "ctdb")
    for sub in ("tests", "config"):
        if not os.path.isdir(os.path.join(src, sub)):
            sys.exit(f"{samba} is not a Samba source tree (no ctdb/{sub})")
    ctdbDir = os.path.join(work, "ctdb")
    for sub in ("tests", "config"):
        shutil.copytree(
            os.path.join(src, sub), os.path.join(ctdbDir, sub), symlinks=True
        )
    binDir = os.path.join(ctdbDir, "bin")
    os.makedirs(binDir)
    links = {"ctdbd": ctdbd}
    for tool in ("ctdb", "onnode", "ltdbtool", "ping_pong"):
        path = shutil.which(tool)
        if path:
            links[tool] = path
    for path in sorted(glob.glob(os.path.join(SAMBA_HELPERS, "*"))):
        links.setdefault(os.path.basename(path), path)
    if helpersDir:
        # Only the test helpers' names: a venv's bin also holds python, pip
        # and our ctdbd, which must not replace the programs under test.
        for name in TEST_HELPERS:
            path = os.path.join(helpersDir, name)
            if os.access(path, os.X_OK) and not os.path.isdir(path):
                links[name] = os.path.abspath(path)
    for name, target in links.items():
        os.symlink(target, os.path.join(binDir, name))
    return ctdbDir


def _ctdbdProcesses(stateDir: str) -> list[tuple[int, str]]:
    """(pid, pid file) of daemons a test left running under stateDir."""
    found = []
    for pidFile in glob.glob(
        os.path.join(stateDir, "**", "run", "ctdbd.pid"), recursive=True
    ):
        try:
            with open(pidFile) as f:
                pid = int(f.read().split()[0])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if b"ctdbd" in cmdline:
            found.append((pid, pidFile))
    return found


def cleanUp(stateDir: str) -> int:
    """Stop daemons a timed-out or failed test left behind; count them."""
    leftovers = _ctdbdProcesses(stateDir)
    for pid, _ in leftovers:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        os.path.exists(f"/proc/{pid}") for pid, _ in leftovers
    ):
        time.sleep(0.2)
    for pid, pidFile in leftovers:
        if os.path.exists(f"/proc/{pid}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.unlink(pidFile)
        except FileNotFoundError:
            pass
    return len(leftovers)


def runTest(
    ctdbDir: str,
    test: str,
    limit: int,
    stateDir: str,
    logDir: str,
) -> tuple[str, float]:
    """Run one test with Samba's run_tests.sh; (result, seconds)."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("CTDB_"):
            del env[name]
    logFile = os.path.join(logDir, test.replace("/", "_") + ".log")
    start = time.monotonic()
    with open(logFile, "wb") as out:
        try:
            proc = subprocess.run(
                ["tests/run_tests.sh", "-T", str(limit), "-V", stateDir, test],
                cwd=ctdbDir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=limit + 120,
                check=False,
            )
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    seconds = time.monotonic() - start
    result = "TIMEDOUT" if code is None else "FAILED"
    with open(logFile, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = RESULT.match(line)
            if m:
                result = m.group(1)
    left = cleanUp(stateDir)
    if left:
        with open(logFile, "a") as f:
            f.write(f"\n[runner] stopped {left} ctdbd left running\n")
    return result, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "samba", help="a Samba 4.17 source tree (with ctdb/tests, ctdb/config)"
    )
    parser.add_argument(
        "tests", nargs="*", help="suites or suite/test names (default: simple database)"
    )
    parser.add_argument(
        "--debian", action="store_true", help="test Debian's /usr/sbin/ctdbd instead"
    )
    parser.add_argument("--ctdbd", help="the ctdbd to test (default: txctdb's)")
    parser.add_argument(
        "--helpers-dir", help="directory of test helper programs (fetch_ring, ...)"
    )
    parser.add_argument(
        "-T", "--time-limit", type=int, default=300, help="seconds per test (300)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory and logs"
    )
    parser.add_argument(
        "--log-dir",
        help="write per-test logs here (default: a new temporary directory)",
    )
    options = parser.parse_args(argv)

    ctdbd = options.ctdbd or ("/usr/sbin/ctdbd" if options.debian else ourCtdbd())
    work = tempfile.mkdtemp(prefix="samba-integration-")
    try:
        helpersDir = options.helpers_dir
        if helpersDir is None:
            python = txctdbPython(ctdbd) or txctdbPython(shutil.which("ctdbd"))
            if python is not None:
                helpersDir = writeOurHelpers(python, os.path.join(work, "helpers"))
        ctdbDir = makeTree(os.path.abspath(options.samba), work, ctdbd, helpersDir)
        tests = findTests(ctdbDir, options.tests or list(DEFAULT_SUITES))
        stateDir = os.path.join(work, "state")
        logDir = options.log_dir or tempfile.mkdtemp(prefix="samba-integration-logs-")
        os.makedirs(logDir, exist_ok=True)
        print(
            f"ctdbd: {ctdbd}; helpers: {helpersDir or '(none)'}; logs: {logDir}",
            flush=True,
        )
        passed = failed = skipped = 0
        for test in tests:
            result, seconds = runTest(
                ctdbDir, test, options.time_limit, stateDir, logDir
            )
            name = test.removeprefix("tests/INTEGRATION/").removesuffix(".sh")
            print(f"{result:9} {name} ({seconds:.0f} s)", flush=True)
            if result == "PASSED":
                passed += 1
            elif result == "SKIPPED":
                skipped += 1
            else:
                failed += 1
        extra = f", {skipped} skipped" if skipped else ""
        print(f"{passed} passed, {failed} failed{extra}")
        return 0 if failed == 0 else 1
    finally:
        if options.keep:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
