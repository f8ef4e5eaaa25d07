#!/usr/bin/env bash
# `make ddt-lab`: the DDT lab (configs/lab/ddt.yaml, docs/lab.md "The DDT lab",
# docs/ddt.md): a DDT root, child DDT nodes, three Map-Servers, two DDT
# Map-Resolvers and four sites in instance-IDs 0 and 7, over delayed links
# (0.5 ms to each domain's router, 10 / 20 ms from the routers to the root).
# Starts rlocd in every node that has a configuration (configs/ddt/), waits
# for the registrations, pings across each instance-ID (the first packets wait
# in the ITR's hold queue while the Map-Resolver walks the tree), resolves an
# unregistered EID and one in a delegation hole, and prints the Map-Resolvers'
# referral caches and the DDT nodes' counters. Tears everything down at the
# end (also on Ctrl-C or failure) unless KEEP=1: then it prints the run ID and
# leaves the lab and the daemons running (`labctl down ID` removes both).
# Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "ddt-lab: needs root (namespaces, XDP)" >&2; exit 1; }
./scripts/deps.sh ip
./scripts/deps.sh ping

GO=${GO:-go}
BIN=bin
TOPO=configs/lab/ddt.yaml
RUN=/run/rloc-ddt
ID=ddt$$
NODES="root ddt-a1 ddt-a2 ddt-b ms1 ms2 ms3 mr1 mr2 xtr1 xtr2 xtr3 xtr4"
mkdir -p "$BIN" "$RUN"
echo "== building rlocd, rlocctl, labctl, lig"
$GO build -o "$BIN/" ./cmd/rlocd ./cmd/rlocctl ./lab/cmd/labctl ./cmd/lig
LABCTL=$BIN/labctl
RLOCCTL=$BIN/rlocctl

$LABCTL down "$TOPO" >/dev/null 2>&1 || true

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${KEEP:-0}" = 1 ] && [ $rc -eq 0 ]; then
    echo "== left running: run $ID (sockets $RUN/NODE.sock); remove with: $LABCTL down $ID"
    exit 0
  fi
  echo "== tearing down"
  $LABCTL down "$ID" >/dev/null 2>&1 || true   # kills the daemons with the namespaces
  if [ $rc -ne 0 ]; then
    echo "ddt-lab FAILED (exit $rc); daemon logs:" >&2
    for f in "$RUN"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== bringing up $TOPO (run $ID)"
$LABCTL up -id "$ID" "$TOPO"

for n in $NODES; do
  ns=$($LABCTL ns "$ID" "$n")
  rm -f "$RUN/$n.sock"
  ip netns exec "$ns" setsid "$BIN/rlocd" --config "configs/ddt/$n.yaml" --mgmt-socket "$RUN/$n.sock" \
    >"$RUN/$n.log" 2>&1 </dev/null &
  echo "   rlocd $n (pid $!) in $ns, log $RUN/$n.log"
done

ctl() { local n=$1; shift; $RLOCCTL -s "$RUN/$n.sock" "$@"; }

echo "== waiting for the four registrations (ms1: 1, ms2: 1, ms3: 2)"
regs() { ctl "$1" json /v1/registrations 2>/dev/null | grep -c '"eid"' || true; }
for _ in $(seq 150); do
  [ "$(regs ms1)" -ge 1 ] && [ "$(regs ms2)" -ge 1 ] && [ "$(regs ms3)" -ge 2 ] && break
  sleep 0.1
done
[ "$(regs ms1)" -ge 1 ] && [ "$(regs ms2)" -ge 1 ] && [ "$(regs ms3)" -ge 2 ] ||
  { echo "ddt-lab: sites not registered" >&2; exit 1; }

bad=0
pingt() {
  local from=$1 to=$2 what=$3 got
  got=$($LABCTL exec "$ID" "$from" ping -c 3 -i 0.2 -W 2 -q "$to" 2>&1 | grep -o '[0-9]* received' | grep -o '^[0-9]*' || echo 0)
  printf '   %-44s %-12s %s of 3 received\n' "$what" "$to" "$got"
  [ "$got" = 3 ] || bad=$((bad + 1))
}
echo
echo "== pings (3 each, all must arrive; the first wait in the ITR's hold queue during the DDT resolution)"
pingt h1 10.1.17.10 "site 1 -> site 2, iid 0 (mr1: root 10.5 ms away)"
pingt h3 10.7.2.10 "site 3 -> site 4, iid 7 (mr2: root 20.5 ms away)"

echo
echo "== lig from xtr1 (an ephemeral port: the ETR answers it there)"
for eid in 10.1.1.77 10.1.5.5 10.200.0.1; do
  echo "\$ lig $eid --mr 192.0.2.2"
  $LABCTL exec "$ID" xtr1 "$BIN/lig" "$eid" --mr 192.0.2.2 || bad=$((bad + 1))
done

for n in mr1 mr2; do
  echo
  echo "\$ rlocctl ddt referrals   (on $n)"
  ctl "$n" ddt referrals
done
echo
echo "\$ rlocctl map-cache   (on xtr1)"
ctl xtr1 map-cache
echo
[ "$bad" -eq 0 ] && echo "== every ping answered, every lookup replied" || echo "== $bad failures"
[ "$bad" -eq 0 ]
