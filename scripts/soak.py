# -*- test-case-name: tests.integration.test_nemesis -*-
"""
The fault soak: a 3-node cluster in network namespaces, the fault workload
on every node, and N faults from the nemesis (a seed makes the run
repeatable), every invariant checked after each heal and at the end.

    .venv/bin/python scripts/soak.py                     (as root)
    .venv/bin/python scripts/soak.py --faults 100 --seed 7 --daemon both
    .venv/bin/python scripts/soak.py --kinds kill,pause,isolate --json out.json

Prints a line per fault, each violation as it is found, and at the end the
invariant table per daemon: check, runs, violations.  Exits 0 when no check
was violated, 1 otherwise.  Everything made (processes, namespaces, the
cluster's directory unless --keep) is removed at the end, also on errors
and Ctrl-C.  See docs/FAULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from types import FrameType

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.faultworkload import Workload
from tests.support.invariants import (
    CONVERGE_BOUND,
    FaultRun,
    Invariants,
    InvariantTable,
)
from tests.support.nemesis import KINDS, Nemesis, makeCluster, nftProblem
from tests.support.netns import NetworkLab, netnsProblem
from tests.support.netnscluster import NetnsNetwork

#: fault kinds Samba's ctdbd is not given: none so far
CTDBD_SKIPS: tuple[str, ...] = ()


def soak(
    daemon: str,
    faults: int,
    seed: int,
    kinds: tuple[str, ...],
    reclock: bool,
    keep: bool,
    bound: float,
    log: object = print,
    table: InvariantTable | None = None,
) -> InvariantTable:
    """
    One soak against C{daemon} (C{ours} or C{ctdbd}); its table.  A
    C{table} passed in is filled as the run goes, so that a caller still
    has the checks made so far when the run is interrupted.
    """
    say = log if callable(log) else print
    if table is None:
        table = InvariantTable(daemon=daemon)
    lab = NetworkLab(prefix="txsoak")
    directory = tempfile.mkdtemp(prefix=f"txsoak-{daemon}-", dir="/tmp")
    cluster = None
    nemesis = None
    workload = None
    try:
        network = NetnsNetwork(lab, nodes=3)
        cluster = makeCluster(daemon, network, directory, reclock=reclock)
        started = time.monotonic()
        cluster.start(timeout=90)
        say(
            f"[{daemon}] cluster up in {time.monotonic() - started:.1f} s ({directory})"
        )
        # the workers run until told to stop, or for this long: far more
        # than the faults can take (their default hour ended long soaks early)
        workload = Workload(cluster, directory, seconds=max(3600.0, 300.0 * faults))
        workload.start()
        chosen = tuple(k for k in kinds if daemon != "ctdbd" or k not in CTDBD_SKIPS)
        nemesis = Nemesis(cluster, seed, kinds=chosen)
        invariants = Invariants(
            cluster, workload, table, bound=bound, log=lambda s: say(f"[{daemon}] {s}")
        )
        invariants.afterHeal("the start")
        run = FaultRun(nemesis, invariants, log=lambda s: say(f"[{daemon}] {s}"))
        run.run(faults)
        results = workload.stop()
        invariants.atEnd(results)
        return table
    finally:
        if nemesis is not None:
            nemesis.healAll()
        if workload is not None:
            workload.stop(timeout=5)
        if cluster is not None:
            cluster.stop()
        lab.cleanup()
        if keep:
            say(f"[{daemon}] kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", type=int, default=500, help="faults (500)")
    parser.add_argument("--seed", type=int, default=1, help="the nemesis's seed (1)")
    parser.add_argument(
        "--daemon", choices=("ours", "ctdbd", "both"), default="ours", help="(ours)"
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="comma-separated fault kinds (all)"
    )
    parser.add_argument(
        "--no-reclock", action="store_true", help="run without the cluster lock"
    )
    parser.add_argument(
        "--bound",
        type=float,
        default=CONVERGE_BOUND,
        help=f"seconds to converge after a heal ({CONVERGE_BOUND:.0f})",
    )
    parser.add_argument("--json", help="also write the tables to this file")
    parser.add_argument("--keep", action="store_true", help="keep the directories")
    args = parser.parse_args(argv)
    problem = netnsProblem() or nftProblem()
    if problem:
        print(problem, file=sys.stderr)
        return 2

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    daemons = ("ours", "ctdbd") if args.daemon == "both" else (args.daemon,)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    tables: list[InvariantTable] = []
    began = time.monotonic()

    def say(line: str) -> None:
        print(f"{time.monotonic() - began:7.0f}s {line}", flush=True)

    interruption = ""
    try:
        for daemon in daemons:
            tables.append(InvariantTable(daemon=daemon))
            soak(
                daemon,
                args.faults,
                args.seed,
                kinds,
                not args.no_reclock,
                args.keep,
                args.bound,
                log=say,
                table=tables[-1],
            )
    except KeyboardInterrupt:
        interruption = "interrupted: the tables hold the checks made until then"
    print()
    if interruption:
        print(interruption)
    print(
        f"seed {args.seed}, {args.faults} faults per daemon asked, kinds"
        f" {','.join(kinds)}, {time.monotonic() - began:.0f} s"
    )
    for table in tables:
        print()
        print(table.render())
        for v in table.violations[:20]:
            print(f"  {v.check} after {v.when}: {v.detail[:300]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([t.asDict() for t in tables], f, indent=1)
    if interruption:
        return 130
    return 1 if any(t.violations for t in tables) else 0


if __name__ == "__main__":
    sys.exit(main())
