#!/bin/bash
# A 3-node txctdb cluster on 127.0.0.1-3, driven by Samba's own ctdb tool.
#
#   make demo                 (or: VENV=.venv DEMO_DIR=demo-cluster scripts/demo.sh)
#
# Node K listens on 127.0.0.(K+1):4379 and serves Samba's tool on
# $DEMO_DIR/nodeK/run/ctdbd.socket.  The cluster is always stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DEMO_DIR=${DEMO_DIR:-demo-cluster}
NODES=3
BASE=127.0.0.1
PORT=4379
CLUSTER="$VENV/bin/ctdb-cluster --dir $DEMO_DIR"
SAMBA_CTDB=/usr/bin/ctdb

heading() { printf '\n==== %s ====\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# Samba's ctdb tool, talking to node $1 of the demo cluster.
samba_ctdb() {
    local pnn=$1; shift
    (eval "$($CLUSTER env "$pnn")"; "$SAMBA_CTDB" "$@")
}

show() {  # show PNN ARGS...: print the command, then run it
    local pnn=$1; shift
    printf '$ ctdb %s        # via node %s\n' "$*" "$pnn"
    samba_ctdb "$pnn" "$@" || true
}

[ -x "$SAMBA_CTDB" ] || die "Samba's ctdb tool ($SAMBA_CTDB) is missing; run make install"
[ -x "$VENV/bin/ctdb-cluster" ] || die "$VENV/bin/ctdb-cluster is missing; run make install"

# A demo left running by an interrupted earlier run is stopped (by its PIDs).
if [ -f "$DEMO_DIR/cluster.json" ]; then
    $CLUSTER stop >/dev/null 2>&1 || true
fi

# Node K = 127.0.0.(K+1): refuse to start if anything else holds port 4379 there.
busy=$(ss -Hltn "sport = :$PORT" | awk '{print $4}' |
       grep -E "^(127\.0\.0\.[1-$NODES]|0\.0\.0\.0|\*|\[::\]):$PORT\$" || true)
if [ -n "$busy" ]; then
    die "port $PORT is already in use on: $(echo $busy) -- stop that ctdbd first (ss -ltnp 'sport = :$PORT')"
fi

cleanup() {
    heading "Stopping the cluster"
    $CLUSTER stop || true
    $CLUSTER status || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

heading "Setting up $NODES nodes in $DEMO_DIR (node K = 127.0.0.(K+1):$PORT)"
echo "\$ ctdb-cluster --dir $DEMO_DIR setup --nodes $NODES --base $BASE"
$CLUSTER setup --nodes "$NODES" --base "$BASE" --port "$PORT"
cat "$DEMO_DIR/node0/nodes"

heading "Starting the cluster"
echo "\$ ctdb-cluster --dir $DEMO_DIR start"
$CLUSTER start
$CLUSTER status
echo
echo "Samba's tool is pointed at node 0 with:"
echo "\$ eval \$(ctdb-cluster --dir $DEMO_DIR env 0)"
$CLUSTER env 0

heading "Samba's ctdb tool: nodestatus and ping"
show 0 nodestatus all
for k in $(seq 0 $((NODES - 1))); do
    show 0 ping -n "$k"
done

heading "Killing node 2"
echo "\$ ctdb-cluster --dir $DEMO_DIR kill 2"
$CLUSTER kill 2
echo "waiting (at most 30 s) until node 0 reports node 2 DISCONNECTED ..."
status=""
for _ in $(seq 1 60); do
    status=$(samba_ctdb 0 nodestatus all 2>&1 || true)
    if echo "$status" | grep -qE '^pnn:2 .*DISCONNECTED'; then
        break
    fi
    sleep 0.5
done
echo '$ ctdb nodestatus all        # via node 0'
echo "$status"
echo "$status" | grep -qE '^pnn:2 .*DISCONNECTED' ||
    die "node 2 was not reported DISCONNECTED within 30 s"

heading "Starting node 2 again"
echo "\$ ctdb-cluster --dir $DEMO_DIR start 2"
$CLUSTER start 2
status=""
for _ in $(seq 1 60); do
    status=$(samba_ctdb 0 nodestatus all 2>&1 || true)
    if echo "$status" | grep -qE '^pnn:2 .* OK$'; then
        break
    fi
    sleep 0.5
done
echo '$ ctdb nodestatus all        # via node 0'
echo "$status"
echo "$status" | grep -qE '^pnn:2 .* OK$' ||
    die "node 2 did not come back OK within 30 s"
show 2 ping -n 2

echo
echo "demo: all steps succeeded"
