"""
Recovery benchmark (issue 5): our daemon vs Samba's ctdbd 4.17.

Not a test; run by hand from the repository root:

    .venv/bin/python bench/bench_recovery.py [--rounds 3] [--records 10000]

In one run it starts a 3-node cluster of our daemons (LocalCluster) and a
3-node real ctdbd cluster (RealCtdbdCluster) on distinct random loopback
ranges and measures, on each, with the same lean blocking client
(bench/_common.py RawClient) polling GET_RECMODE and GETVNNMAP of every
survivor every ~10 ms:

 - non-leader death: SIGKILL of a node that does not lead, until every
   survivor is in recovery mode NORMAL with one new generation;
 - leader death: the same for the leader (found with ``ctdb leader``);
 - ``ctdb recover``: from the moment a node is first seen in recovery mode
   ACTIVE until all are NORMAL with a new generation (the tool's own wall
   time is reported too);
 - recovery of 3 persistent databases of --records records each (filled
   with ``ctdb ptrans``), forced with ``ctdb recover``, timed as above.

The killed node is restarted (and the cluster waited for) between rounds,
and before every measurement the cluster is left alone for --settle seconds
(default 11): ctdbd suppresses recoveries for RerecoveryTimeout (10 s)
after each one, so without settling it measures ~8 s for everything.
Medians over --rounds are reported, with min and max.

The two clusters run at the same time and take turns within every round.
Targets (ctdbd 4.17 measured on the reference machine in brackets):
non-leader death under 0.5 s [0.6-1.1 s], leader death under 1 s
[5.7-8 s], ``recover`` under 0.5 s [1.4 s], and (issue 14) the recovery of
3 x 10,000 records at most ctdbd's time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RawClient, ourCluster, realCluster, runInfo

from ctdb.protocols import controls as C
from ctdb.protocols.controls import Control

POLL = 0.01
SETTLE = 11.0


def tool(
    cluster: Any, pnn: int, *args: str, stdin: str | None = None, timeout: float = 60
) -> str:
    env = dict(os.environ)
    env.update(cluster.env(pnn))
    result = subprocess.run(
        ["ctdb", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ctdb {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def state(client: RawClient) -> tuple[int, int]:
    """(recovery mode, generation) of one node."""
    mode = client.control(Control.GET_RECMODE).status
    vnn = client.control(Control.GETVNNMAP)
    return mode, C.VnnMap.decode(vnn.data).generation


def generation(cluster: Any, pnn: int) -> int:
    client = RawClient(cluster.socketPath(pnn))
    try:
        return state(client)[1]
    finally:
        client.close()


def waitRecovered(
    cluster: Any, survivors: list[int], old: int, started: float, timeout: float = 60.0
) -> tuple[float, float | None]:
    """Poll the survivors until all are NORMAL with one generation other
    than C{old}.  Returns (seconds since C{started}, seconds since a
    survivor was first seen ACTIVE or None)."""
    clients: dict[int, RawClient] = {}
    firstActive: float | None = None
    deadline = started + timeout
    try:
        while time.monotonic() < deadline:
            states = {}
            for k in survivors:
                try:
                    if k not in clients:
                        clients[k] = RawClient(cluster.socketPath(k), timeout=2)
                    states[k] = state(clients[k])
                except (OSError, RuntimeError):
                    clients.pop(k, None)
                    states[k] = (-1, old)
            now = time.monotonic()
            if firstActive is None and any(
                m == C.CTDB_RECOVERY_ACTIVE for m, _ in states.values()
            ):
                firstActive = now
            gens = {g for _, g in states.values()}
            if (
                all(m == C.CTDB_RECOVERY_NORMAL for m, _ in states.values())
                and len(gens) == 1
                and old not in gens
            ):
                return now - started, (
                    None if firstActive is None else now - firstActive
                )
            time.sleep(POLL)
    finally:
        for c in clients.values():
            c.close()
    raise RuntimeError(f"no recovery of {survivors} within {timeout} s")


def leader(cluster: Any) -> int:
    return int(tool(cluster, 0, "leader").strip())


def restart(cluster: Any, pnn: int) -> None:
    if hasattr(cluster, "waitConnected"):  # ours
        cluster.start([pnn], timeout=60)
    else:
        cluster.start(timeout=60, pnns=[pnn])


def measureDeath(cluster: Any, victimOf: Callable[[int], int]) -> float:
    time.sleep(SETTLE)
    lead = leader(cluster)
    victim = victimOf(lead)
    survivors = [k for k in range(3) if k != victim]
    old = generation(cluster, survivors[0])
    started = time.monotonic()
    cluster.kill(victim)
    elapsed, _ = waitRecovered(cluster, survivors, old, started)
    restart(cluster, victim)
    return elapsed


def measureRecover(cluster: Any) -> tuple[float, float, float]:
    """(ACTIVE -> NORMAL, tool start -> NORMAL, tool wall time)."""
    time.sleep(SETTLE)
    old = generation(cluster, 0)
    result: dict[str, float] = {}
    started = time.monotonic()
    proc = subprocess.Popen(
        ["ctdb", "recover"],
        env={**os.environ, **cluster.env(0)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    total, fromActive = waitRecovered(cluster, [0, 1, 2], old, started)
    proc.wait(timeout=60)
    result["wall"] = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"ctdb recover: {proc.stderr.read()!r}")  # type: ignore[union-attr]
    return (fromActive if fromActive is not None else total), total, result["wall"]


def fill(cluster: Any, records: int, dbs: list[str]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".ptrans", delete=False) as f:
        for i in range(records):
            f.write(f'"key-{i:06d}" "value {i} {"x" * 40}"\n')
        path = f.name
    try:
        for name in dbs:
            tool(cluster, 0, "attach", name, "persistent")
            tool(cluster, 0, "ptrans", name, path, timeout=300)
    finally:
        os.unlink(path)


KEYS = ("nonleader", "leader", "recover", "recover_from_tool", "recover_wall")
BIG_KEYS = ("big", "big_wall")


def oneRound(kind: str, cluster: Any, out: dict[str, list[float]], r: int) -> None:
    out["nonleader"].append(measureDeath(cluster, lambda lead: (lead + 1) % 3))
    out["leader"].append(measureDeath(cluster, lambda lead: lead))
    active, total, wall = measureRecover(cluster)
    out["recover"].append(active)
    out["recover_from_tool"].append(total)
    out["recover_wall"].append(wall)
    print(
        f"  {kind} round {r + 1}: non-leader {out['nonleader'][-1]:.3f} s, "
        f"leader {out['leader'][-1]:.3f} s, recover {active:.3f} s "
        f"(tool {wall:.3f} s)",
        flush=True,
    )


def bigRound(kind: str, cluster: Any, out: dict[str, list[float]]) -> None:
    active, _total, wall = measureRecover(cluster)
    out["big"].append(active)
    out["big_wall"].append(wall)
    print(f"  {kind}: recover with records {active:.3f} s", flush=True)


def run(
    clusters: dict[str, Any], rounds: int, records: int
) -> dict[str, dict[str, list[float]]]:
    """Every measure on every cluster, the clusters taking turns within
    each round (and the first in one round last in the next), so that load
    from elsewhere on the machine hits both alike."""
    out: dict[str, dict[str, list[float]]] = {
        kind: {key: [] for key in KEYS + BIG_KEYS} for kind in clusters
    }
    kinds = list(clusters)
    for r in range(rounds):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            oneRound(kind, clusters[kind], out[kind], r)
    dbs = [f"bench_recovery_{i}.tdb" for i in range(3)]
    for kind in kinds:
        t0 = time.monotonic()
        fill(clusters[kind], records, dbs)
        print(
            f"  {kind}: filled 3 x {records} records in {time.monotonic() - t0:.1f} s",
            flush=True,
        )
    for r in range(rounds):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            bigRound(kind, clusters[kind], out[kind])
    return out


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):7.3f} s  [{min(values):.3f}-{max(values):.3f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--only", choices=["ours", "real"], default=None)
    parser.add_argument(
        "--settle",
        type=float,
        default=11.0,
        help="quiet seconds before each measurement",
    )
    args = parser.parse_args()
    global SETTLE
    SETTLE = args.settle
    for line in runInfo("# bench_recovery"):
        print(line if line.startswith("#") else f"# {line}")
    with contextlib.ExitStack() as stack:
        clusters: dict[str, Any] = {}
        if args.only != "real":
            clusters["ours"] = stack.enter_context(ourCluster(3))
        if args.only != "ours":
            clusters["ctdbd"] = stack.enter_context(realCluster(3))
        results = run(clusters, args.rounds, args.records)
    # (label, key, absolute target for ours in s, target for ours / ctdbd)
    rows = [
        ("non-leader SIGKILL -> NORMAL", "nonleader", 0.5, None),
        ("leader SIGKILL -> NORMAL", "leader", 1.0, None),
        ("recover: ACTIVE -> NORMAL", "recover", 0.5, None),
        ("recover: tool start -> NORMAL", "recover_from_tool", None, None),
        ("recover: tool wall time", "recover_wall", None, None),
        (f"recover, 3 x {args.records} records", "big", None, 1.0),
        ("  tool wall time", "big_wall", None, None),
    ]
    print()
    print(f"{'':36} {'ours':>28} {'ctdbd 4.17':>28} {'ratio':>6}  target")
    for label, key, target, ratioTarget in rows:
        mine = results.get("ours", {}).get(key, [])
        theirs = results.get("ctdbd", {}).get(key, [])
        ratio = (
            statistics.median(mine) / statistics.median(theirs)
            if mine and theirs and statistics.median(theirs)
            else None
        )
        mark = ""
        if target is not None and mine:
            ok = statistics.median(mine) < target
            mark = f"< {target} s {'met' if ok else 'MISSED'}"
        if ratioTarget is not None and ratio is not None:
            ok = ratio <= ratioTarget
            mark = f"<= {ratioTarget:g}x {'met' if ok else 'MISSED'}"
        ratioText = f"{ratio:5.2f}x" if ratio is not None else "     -"
        print(f"{label:36} {fmt(mine):>28} {fmt(theirs):>28} {ratioText}  {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
