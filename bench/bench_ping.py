"""
PING control benchmark (issue 3): our daemon vs Samba's ctdbd 4.17.

Not a test; run by hand from the repository root:

    .venv/bin/python bench/bench_ping.py [--count 2000] [--seconds 3] [--inflight 64]

It starts a 3-node cluster of our daemons (ctdb.cluster.LocalCluster) and a
3-node real ctdbd cluster (tests.support.realctdbd.RealCtdbdCluster) on two distinct
random loopback ranges, and measures both with the same lean blocking
client (bench/_common.py RawClient, no Twisted) connected to node 0:

 - PING round trip, one at a time (--count sequential), to node 0 itself
   (local) and to node 1 through node 0 (remote, destnode=1): median, p90;
 - pipelined PING throughput with --inflight requests outstanding, for
   --seconds, local and remote: controls/s.

The clusters are measured --rounds times, alternately, and the medians
are reported, so that load from elsewhere on the machine hits both alike.

Targets (issue 14): our median round trip at most 1.25x ctdbd's locally
and 1.5x remotely; our pipelined rate at least ctdbd's locally and 0.75x
remotely.  Both clusters are stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RawClient, ourCluster, realCluster, runInfo, summary

from ctdb.protocols.controls import Control

#: issue 14's targets, ours / ctdbd: round trips at most, rates at least
TARGETS = {
    "local rtt median": 1.25,
    "remote rtt median": 1.5,
    "local pipelined": 1.0,
    "remote pipelined": 0.75,
}


def measure(
    socketPath: str, count: int, seconds: float, inflight: int
) -> dict[str, float]:
    client = RawClient(socketPath)
    try:
        assert client.pnn == 0, client.pnn
        for dest in (0, 1):
            reply = client.control(Control.PING, destnode=dest)
            assert reply.status >= 0, reply
        out: dict[str, float] = {}
        for name, dest in (("local", 0), ("remote", 1)):
            t = client.template(Control.PING, destnode=dest)
            client.roundTrips(t, min(200, count))  # warm up
            med, p90 = summary(client.roundTrips(t, count))
            out[f"{name} rtt median"] = med
            out[f"{name} rtt p90"] = p90
            out[f"{name} pipelined"] = client.pipelined(t, inflight, seconds)
        return out
    finally:
        client.close()


def combine(rounds: list[dict[str, float]]) -> dict[str, float]:
    """The median of each measure over the rounds."""
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def report(
    ours: dict[str, float], real: dict[str, float], args: argparse.Namespace
) -> str:
    lines = [
        *runInfo("PING benchmark"),
        (
            "client: bench/_common.py RawClient (blocking socket, no Twisted); "
            f"N={args.count} sequential, {args.inflight} in flight for "
            f"{args.seconds:g} s; median of {args.rounds} interleaved rounds"
        ),
        "",
        f"{'measure':<24}{'ours':>12}{'ctdbd':>12}{'ours/ctdbd':>12}  target",
    ]
    for key, o in ours.items():
        r = real[key]
        ratio = o / r if r else float("inf")
        target = TARGETS.get(key)
        if "pipelined" in key:
            ok = target is not None and ratio >= target
            cells = f"{o:>10,.0f}/s{r:>10,.0f}/s"
            goal = f">= {target:g}" if target is not None else ""
        else:
            ok = target is not None and ratio <= target
            cells = f"{o:>10.1f}us{r:>10.1f}us"
            goal = f"<= {target:g}" if target is not None else ""
        mark = "" if target is None else "ok" if ok else "MISSED"
        lines.append(f"{key:<24}{cells}{ratio:>12.2f}  {goal} {mark}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="sequential PINGs")
    parser.add_argument("--seconds", type=float, default=3.0, help="pipelined duration")
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure each cluster this many times, alternating, and report medians",
    )
    args = parser.parse_args(argv)
    ourRounds: list[dict[str, float]] = []
    realRounds: list[dict[str, float]] = []
    with contextlib.ExitStack() as stack:
        print("starting our 3-node cluster ...", file=sys.stderr)
        ours = stack.enter_context(ourCluster(3))
        print("starting a real 3-node ctdbd cluster ...", file=sys.stderr)
        real = stack.enter_context(realCluster(3))
        for i in range(args.rounds):
            # Alternate the order: load from elsewhere hits both alike.
            order = [("ctdbd", real, realRounds), ("ours", ours, ourRounds)]
            for name, cluster, results in order if i % 2 == 0 else order[::-1]:
                print(f"round {i + 1}: measuring {name} ...", file=sys.stderr)
                results.append(
                    measure(
                        cluster.socketPath(0), args.count, args.seconds, args.inflight
                    )
                )
        print("stopping both clusters ...", file=sys.stderr)
    print(report(combine(ourRounds), combine(realRounds), args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
