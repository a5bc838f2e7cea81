"""
Scale benchmark (issue 14): how cost grows with records and with nodes,
our daemon beside Samba's ctdbd 4.17 in the same run.

Not a test; run by hand from the repository root (as root, with Samba's
ctdbd installed, see REAL_CTDBD.md):

    .venv/bin/python bench/bench_scale.py                     # the full sweep
    .venv/bin/python bench/bench_scale.py --records 10000,100000 --nodes 3,5 \
        --rounds 1 --out /tmp/scale

Three sweeps, each cluster on its own random loopback range, ours and
ctdbd one after the other for every point:

 - records: 3 nodes whose persistent database directory holds one database
   of N records (default 10k, 100k, 1M), made before the start as a TDB
   file per node (both daemons attach the persistent databases they find at
   start); once the cluster is up, ``ctdb recover`` is timed from the first
   node seen in recovery mode ACTIVE to every node NORMAL with one new
   generation (median of --rounds), and the resident memory (VmRSS) of
   every node is read after the first of those recoveries (all records have
   passed through every node then);
 - nodes: N nodes (default 3, 5, 8) with a database of --base-records
   (10k): the same recovery time, the PING round trip to node 0 itself and
   to node 1 through node 0 (bench/_common.py RawClient), and the fetch ring
   (one record fetch-locked on node 0, 1, ..., N-1, 0, ...; migrations/s)
   run by a child process on the Twisted client API;
 - memory: the RSS figures of the records sweep.

It prints one table per sweep with ours, ctdbd and the ratio, the date,
the load average and the commit, writes the same as JSON and draws
``scale.png`` (matplotlib) in --out.  Every cluster is stopped at the end
of its point, whatever happens.  Recovery of a persistent database moves
its records from the node with the highest sequence number to every other
node, so its cost is expected to grow linearly with records and with
nodes; what grows faster is reported in bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RawClient, randomBase, summary
from bench_recovery import generation, waitRecovered

from ctdb.cluster import LocalCluster
from ctdb.database.ltdb import LtdbHeader, dbTdbFlags
from ctdb.database.store import TdbRecordStore
from ctdb.protocols import records as R
from ctdb.protocols.controls import Control
from tests.support.realctdbd import RealCtdbdCluster

DB = "bench_scale.tdb"
SETTLE = 11.0  # ctdbd refuses a recovery for RerecoveryTimeout after one
KINDS = ("ours", "ctdbd")


# -- the seeded database ------------------------------------------------------------


def seedFile(directory: str, records: int) -> str:
    """A persistent TDB file of C{records} records with ctdb headers,
    made once per size and copied into every node's directory."""
    path = os.path.join(directory, f"seed-{records}.tdb")
    if os.path.exists(path):
        return path
    hashSize = max(10007, records // 4) | 1
    store = TdbRecordStore(
        path + ".tmp", hashSize=hashSize, tdbFlags=dbTdbFlags(R.DB_FLAGS_PERSISTENT)
    )
    header = LtdbHeader(rsn=1, dmaster=0).encode()
    payload = b"x" * 40
    t0 = time.monotonic()
    store.tdb.transactionStart()
    for i in range(records):
        store.store(b"key-%08d" % i, header + b"value %d " % i + payload)
    store.tdb.transactionCommit()
    store.close()
    os.rename(path + ".tmp", path)
    print(f"  seeded {records:,} records in {time.monotonic() - t0:.1f} s", flush=True)
    return path


def seed(cluster: Any, nodes: int, path: str) -> None:
    for pnn in range(nodes):
        target = os.path.join(cluster.nodeDir(pnn), "db", "persistent")
        os.makedirs(target, exist_ok=True)
        shutil.copyfile(path, os.path.join(target, f"{DB}.{pnn}"))


@contextlib.contextmanager
def cluster(kind: str, nodes: int, seedPath: str | None) -> Iterator[Any]:
    """A started cluster of C{nodes} nodes of C{kind}, seeded; always stopped."""
    d = tempfile.mkdtemp(prefix=f"txctdb-scale-{kind}-", dir="/tmp")
    c: Any
    try:
        if kind == "ours":
            c = LocalCluster(d)
            c.setup(nodes, base=randomBase(100, 250))
        else:
            c = RealCtdbdCluster(d, base=randomBase(20, 99), nodes=nodes)
            c.setup()
        if seedPath is not None:
            seed(c, nodes, seedPath)
        try:
            c.start(timeout=600)
            waitRecovered(c, list(range(nodes)), -1, time.monotonic(), timeout=600)
            if seedPath is not None:
                checkSeeded(c, nodes)
            yield c
        finally:
            c.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def checkSeeded(c: Any, nodes: int) -> None:
    """The seeded database is attached and its first record reads back
    through the last node (so the measures are of a real database)."""
    result = subprocess.run(
        ["ctdb", "pfetch", DB, "key-00000000"],
        env={**os.environ, **c.env(nodes - 1)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if not result.stdout.startswith("value 0 "):
        raise RuntimeError(
            f"seeded {DB} not readable on node {nodes - 1}: "
            f"{result.stdout[:80]!r} {result.stderr.strip()!r}"
        )


# -- measures ---------------------------------------------------------------------------


def timeRecover(c: Any, nodes: int) -> float:
    """``ctdb recover`` through node 0: first ACTIVE -> all NORMAL (s)."""
    time.sleep(SETTLE)
    old = generation(c, 0)
    started = time.monotonic()
    proc = subprocess.Popen(
        ["ctdb", "recover"],
        env={**os.environ, **c.env(0)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    total, fromActive = waitRecovered(c, list(range(nodes)), old, started, timeout=900)
    _, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"ctdb recover: {err!r}")
    return fromActive if fromActive is not None else total


def rssMiB(c: Any, nodes: int) -> list[float]:
    """VmRSS of every node's daemon process (MiB)."""
    out = []
    for pnn in range(nodes):
        pid = c.pid(pnn)
        kib = 0
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    kib = int(line.split()[1])
        out.append(kib / 1024)
    return out


def pingUs(c: Any, count: int) -> dict[str, float]:
    client = RawClient(c.socketPath(0))
    try:
        out = {}
        for name, dest in (("local", 0), ("remote", 1)):
            t = client.template(Control.PING, destnode=dest)
            client.roundTrips(t, min(200, count))
            out[name] = summary(client.roundTrips(t, count))[0]
        return out
    finally:
        client.close()


def fetchRing(c: Any, nodes: int, seconds: float) -> float:
    """The fetch ring over every node, run by a child on the client API."""
    sockets = [c.socketPath(pnn) for pnn in range(nodes)]
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--ring-child", str(seconds)]
        + sockets,
        capture_output=True,
        text=True,
        timeout=120 + seconds,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"fetch ring: {result.stderr.strip()[-2000:]}")
    return float(result.stdout.split()[-1])


def ringChild(seconds: float, sockets: list[str]) -> int:
    from bench_db import VOLATILE, fetchRing, runReactor

    from ctdb.client import connect

    async def main(reactor: Any) -> float:
        clients = [await connect(reactor, path) for path in sockets]
        try:
            dbs = [await client.attach(VOLATILE) for client in clients]
            await fetchRing(dbs, 0.5, "warm")
            return await fetchRing(dbs, seconds, "scale")
        finally:
            for client in clients:
                await client.close()

    print(f"{runReactor(main):.1f}")
    return 0


# -- the sweeps ----------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def recordsSweep(
    args: argparse.Namespace, scratch: str
) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {k: {} for k in args.kinds}
    for records in args.records:
        path = seedFile(scratch, records)
        for kind in args.kinds:
            with cluster(kind, 3, path) as c:
                times = [timeRecover(c, 3)]
                rss = rssMiB(c, 3)
                times += [timeRecover(c, 3) for _ in range(args.rounds - 1)]
            out[kind][records] = {"recover": times, "rss": rss}
            print(
                f"  records {records:>9,} {kind:5}: recover {median(times):8.3f} s, "
                f"RSS {max(rss):7.1f} MiB",
                flush=True,
            )
    return out


def nodesSweep(
    args: argparse.Namespace, scratch: str
) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {k: {} for k in args.kinds}
    path = seedFile(scratch, args.base_records)
    for nodes in args.nodes:
        for kind in args.kinds:
            with cluster(kind, nodes, path) as c:
                times = [timeRecover(c, nodes) for _ in range(args.rounds)]
                ping = pingUs(c, args.count)
                ring = fetchRing(c, nodes, args.ring_seconds)
            out[kind][nodes] = {"recover": times, "ping": ping, "ring": ring}
            print(
                f"  nodes {nodes} {kind:5}: recover {median(times):7.3f} s, PING "
                f"{ping['local']:6.1f}/{ping['remote']:6.1f} us, ring {ring:7.0f}/s",
                flush=True,
            )
    return out


def ratio(a: float, b: float) -> str:
    return f"{a / b:5.2f}x" if b else "    -"


def tables(results: dict[str, Any], kinds: list[str]) -> str:
    lines = []
    if "records" in results and len(kinds) == 2:
        rec = results["records"]
        lines.append("recovery of one persistent database, 3 nodes (median s):")
        lines.append(
            "| records | ours | ctdbd | ratio | RSS ours MiB | RSS ctdbd MiB |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|")
        for n in sorted(rec["ours"]):
            a, b = rec["ours"][n], rec["ctdbd"][n]
            ma, mb = median(a["recover"]), median(b["recover"])
            lines.append(
                f"| {n:,} | {ma:.3f} | {mb:.3f} | {ratio(ma, mb)} "
                f"| {max(a['rss']):.1f} | {max(b['rss']):.1f} |"
            )
    if "nodes" in results and len(kinds) == 2:
        nod = results["nodes"]
        lines.append("")
        lines.append("against nodes (recover s; PING round trip median us; ring /s):")
        lines.append(
            "| nodes | recover ours | ctdbd | PING local ours | ctdbd "
            "| remote ours | ctdbd | ring ours | ctdbd | ring ratio |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in sorted(nod["ours"]):
            a, b = nod["ours"][n], nod["ctdbd"][n]
            lines.append(
                f"| {n} | {median(a['recover']):.3f} | {median(b['recover']):.3f} "
                f"| {a['ping']['local']:.1f} | {b['ping']['local']:.1f} "
                f"| {a['ping']['remote']:.1f} | {b['ping']['remote']:.1f} "
                f"| {a['ring']:.0f} | {b['ring']:.0f} | {ratio(a['ring'], b['ring'])} |"
            )
    return "\n".join(lines)


def plot(results: dict[str, Any], kinds: list[str], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  matplotlib is not installed: no plot (make install adds it)")
        return
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    style = {"ours": "o-", "ctdbd": "s--"}
    rec = results.get("records", {})
    nod = results.get("nodes", {})
    for kind in kinds:
        if rec.get(kind):
            xs = sorted(rec[kind])
            axes[0][0].plot(
                xs,
                [median(rec[kind][x]["recover"]) for x in xs],
                style[kind],
                label=kind,
            )
            axes[0][1].plot(
                xs, [max(rec[kind][x]["rss"]) for x in xs], style[kind], label=kind
            )
        if nod.get(kind):
            xs = sorted(nod[kind])
            axes[1][0].plot(
                xs,
                [median(nod[kind][x]["recover"]) for x in xs],
                style[kind],
                label=kind,
            )
            axes[1][1].plot(
                xs,
                [nod[kind][x]["ring"] for x in xs],
                style[kind],
                label=f"{kind} ring",
            )
    axes[0][0].set(
        xscale="log",
        yscale="log",
        xlabel="records",
        ylabel="recovery (s)",
        title="recovery, 3 nodes",
    )
    axes[0][1].set(
        xscale="log",
        xlabel="records",
        ylabel="largest node RSS (MiB)",
        title="memory against records held",
    )
    axes[1][0].set(
        xlabel="nodes", ylabel="recovery (s)", title="recovery against nodes"
    )
    axes[1][1].set(
        xlabel="nodes", ylabel="migrations/s", title="fetch ring against nodes"
    )
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"  plot: {path}")


def intList(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers: {text!r}")
    return values


def commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    return result.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--ring-child"]:
        return ringChild(float(argv[1]), argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=intList, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--nodes", type=intList, default=[3, 5, 8])
    parser.add_argument("--base-records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=2000, help="PINGs per round trip")
    parser.add_argument("--ring-seconds", type=float, default=3.0)
    parser.add_argument("--sweeps", default="records,nodes")
    parser.add_argument("--daemon", choices=("both", "ours", "ctdbd"), default="both")
    parser.add_argument("--out", default="bench/scale")
    args = parser.parse_args(argv)
    args.kinds = list(KINDS) if args.daemon == "both" else [args.daemon]
    os.makedirs(args.out, exist_ok=True)
    print(
        f"# bench_scale {datetime.datetime.now().isoformat(timespec='seconds')} "
        f"commit {commit()} load {os.getloadavg()[0]:.2f} on {platform.node()}",
        flush=True,
    )
    results: dict[str, Any] = {"commit": commit(), "load": os.getloadavg()}
    scratch = tempfile.mkdtemp(prefix="txctdb-scale-seed-", dir="/tmp")
    try:
        sweeps = args.sweeps.split(",")
        if "records" in sweeps:
            results["records"] = recordsSweep(args, scratch)
        if "nodes" in sweeps:
            results["nodes"] = nodesSweep(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["loadAfter"] = os.getloadavg()
    text = tables(results, args.kinds)
    print(text)
    with open(os.path.join(args.out, "scale.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(args.out, "scale.md"), "w") as f:
        f.write(text + "\n")
    plot(results, args.kinds, os.path.join(args.out, "scale.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
