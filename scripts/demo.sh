#!/usr/bin/env bash
# `make demo`: a LISP network in namespaces on this machine (configs/lab/demo.yaml,
# docs/lab.md): two LISP sites with an rloc xTR each (AF_XDP fast path), a
# Map-Server/Map-Resolver, a PxTR and a non-LISP host. Starts rlocd in every
# router node, waits for the registrations, pings site-to-site and LISP<->non-LISP
# over IPv4 and IPv6, prints map-caches and counters, and tears everything down
# (also on Ctrl-C or failure). Needs root. Idempotent: a leftover run of an
# earlier demo is removed first.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo: needs root (namespaces, XDP)" >&2; exit 1; }
./scripts/deps.sh ip
./scripts/deps.sh ping

GO=${GO:-go}
BIN=bin
TOPO=configs/lab/demo.yaml
RUN=/run/rloc-demo
ID=demo$$
mkdir -p "$BIN" "$RUN"
echo "== building rlocd, rlocctl, labctl"
$GO build -o "$BIN/" ./cmd/rlocd ./cmd/rlocctl ./lab/cmd/labctl
LABCTL=$BIN/labctl
RLOCCTL=$BIN/rlocctl

# Remove what an interrupted earlier demo left (runs of this topology file).
$LABCTL down "$TOPO" >/dev/null 2>&1 || true

pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  echo "== tearing down"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  $LABCTL down "$ID" >/dev/null 2>&1 || true
  if [ $rc -ne 0 ]; then
    echo "demo FAILED (exit $rc); daemon logs:" >&2
    for f in "$RUN"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== bringing up $TOPO (run $ID)"
$LABCTL up -id "$ID" "$TOPO"

for n in msmr xtr1 xtr2 pxtr; do
  ns=$($LABCTL ns "$ID" "$n")
  rm -f "$RUN/$n.sock"
  ip netns exec "$ns" "$BIN/rlocd" --config "configs/demo/$n.yaml" --mgmt-socket "$RUN/$n.sock" \
    >"$RUN/$n.log" 2>&1 &
  pids+=($!)
  echo "   rlocd $n (pid $!) in $ns, log $RUN/$n.log"
done

ctl() { local n=$1; shift; $RLOCCTL -s "$RUN/$n.sock" "$@"; }

echo "== waiting for the four registrations"
for _ in $(seq 100); do
  n=$(ctl msmr json /v1/registrations 2>/dev/null | grep -c '"eid"' || true)
  [ "$n" -ge 4 ] && break
  sleep 0.1
done
echo
echo "\$ rlocctl registrations   (on msmr)"
ctl msmr registrations
[ "$n" -ge 4 ] || { echo "demo: only $n registrations" >&2; exit 1; }

ok=0; bad=0
# Every echo request of a first flow must come back: the first ones wait in
# the ITR's hold queue during resolution (and, at the ETR, in the kernel's
# neighbour queue while ARP/ND runs), none may be lost.
pingt() {
  local from=$1 to=$2 what=$3 got
  $LABCTL exec "$ID" "$from" ping -c 3 -i 0.2 -W 2 -q "$to" >/tmp/rloc-demo-ping.$$ 2>&1 || true
  got=$(grep -o '[0-9]* received' /tmp/rloc-demo-ping.$$ | grep -o '^[0-9]*' || echo 0)
  if [ "$got" = 3 ]; then
    printf '   %-34s %-18s %s\n' "$what" "$to" "3 of 3 received"
    ok=$((ok + 1))
  else
    printf '   %-34s %-18s FAILED: %s of 3 received\n' "$what" "$to" "$got"
    bad=$((bad + 1))
  fi
  rm -f /tmp/rloc-demo-ping.$$
}
echo
echo "== pings (3 each, all must arrive; the first packets wait in the ITR's hold queue during resolution)"
pingt h1 10.2.0.10 "site 1 -> site 2 (IPv4)"
pingt h1 2001:db8:2::10 "site 1 -> site 2 (IPv6)"
pingt h2 10.1.0.10 "site 2 -> site 1 (IPv4)"
pingt h1 198.51.100.10 "site 1 -> non-LISP via PETR (IPv4)"
pingt h2 2001:db8:100::10 "site 2 -> non-LISP via PETR (IPv6)"
pingt nl 10.1.0.10 "non-LISP -> site 1 via PITR (IPv4)"
pingt nl 2001:db8:2::10 "non-LISP -> site 2 via PITR (IPv6)"

for n in xtr1 pxtr; do
  echo
  echo "\$ rlocctl map-cache   (on $n)"
  ctl "$n" map-cache
done
echo
echo "\$ rlocctl stats   (on xtr1)"
ctl xtr1 stats
echo
if [ "$bad" -ne 0 ]; then
  # Where did the packets go? Hold drops, unresolved neighbours, the kernel path.
  for n in xtr2 pxtr; do
    echo
    echo "\$ rlocctl stats   (on $n)"
    ctl "$n" stats
  done
fi
echo
echo "== $ok flows with every ping answered, $bad with losses"
[ "$bad" -eq 0 ]
