#!/bin/bash
# A 3-node txctdb cluster on 127.0.0.1-3, driven by Samba's own ctdb tool,
# ending with the main job: a clustered Samba file server (one smbd with
# clustering = yes per node) that goes on serving when a node dies.
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
SMBCLIENT=/usr/bin/smbclient
SHARE_FILE=$DEMO_DIR/hello.txt

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
[ -x "$SMBCLIENT" ] || die "Samba's smbclient ($SMBCLIENT) is missing; run make install"
[ -x /usr/sbin/smbd ] || die "Samba's smbd is missing; run make install"

# smbclient against node $1's smbd (guest), running the commands in $2.
smb() {
    local pnn=$1; shift
    printf '$ smbclient //127.0.0.%s/data -N -c "%s"\n' "$((pnn + 1))" "$*"
    "$SMBCLIENT" "//127.0.0.$((pnn + 1))/data" -N -c "$*" 2>&1 | grep -v '^Try "help"' || true
}

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
busy=$(ss -Hltn "sport = :445" | awk '{print $4}' |
       grep -E "^(127\.0\.0\.[1-$NODES]|0\.0\.0\.0|\*|\[::\]):445\$" || true)
if [ -n "$busy" ]; then
    die "port 445 is already in use on: $(echo $busy) -- stop that smbd first (ss -ltnp 'sport = :445')"
fi

cleanup() {
    heading "Stopping the cluster"
    $CLUSTER samba stop >/dev/null || true
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

heading "Clustered Samba: one smbd per node, clustering = yes"
echo "\$ ctdb-cluster --dir $DEMO_DIR samba start"
$CLUSTER samba start
grep -E '^(clustering|ctdbd socket|interfaces|path) ' "$DEMO_DIR/node0/samba/smb.conf"
echo
echo "smbd's databases, attached across the cluster:"
show 2 getdbmap

heading "A file written through node 0 reads back through node 1"
echo "hello from node 0, at $(date -u +%H:%M:%S)" >"$SHARE_FILE"
smb 0 "put $SHARE_FILE hello.txt"
got=$(smb 1 "get hello.txt /dev/stdout")
echo "$got"
echo "$got" | grep -q "hello from node 0" || die "node 1 did not read the file written through node 0"

heading "Killing node 1: its smbd goes with its daemon, the others serve on"
echo "\$ ctdb-cluster --dir $DEMO_DIR kill 1"
$CLUSTER kill 1
for _ in $(seq 1 100); do
    $CLUSTER samba status | grep -q '^node1 smbd stopped' && break
    sleep 0.1
done
$CLUSTER samba status
echo "node 1 smbd's last words: $(grep -h 'cluster fatal' "$DEMO_DIR/node1/samba/log.smbd" | tail -1 | sed 's/^ *//')"
echo "written through node 2 after the kill" >"$SHARE_FILE"
smb 2 "put $SHARE_FILE after-kill.txt"
got=$(smb 0 "get after-kill.txt /dev/stdout; get hello.txt /dev/stdout")
echo "$got"
echo "$got" | grep -q "written through node 2 after the kill" ||
    die "node 0 did not read the file written through node 2"
echo "$got" | grep -q "hello from node 0" || die "node 0 lost the file written before the kill"

echo
echo "demo: all steps succeeded"
