#!/usr/bin/env bash
# `make msx-experiment`: the LISP-MSX experiment (issue 15, the article's
# Fig. 6; docs/msx-experiment.md): BenchmarkMSXResolution on
# configs/lab/msx-exp.yaml (700 resolutions of a domain-2 EID through each of
# four Map-Resolvers of domain 1), its samples written to
# bench/results/msx-fig6.csv, then the CDF drawn to bench/results/msx-fig6.png
# (bench/cdfplot). Needs root (namespaces, XDP). Takes about a minute; holds
# /tmp/rloc-heavy.lock while it measures.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "msx-experiment: needs root (namespaces, XDP)" >&2; exit 1; }
GO=${GO:-go}
csv=bench/results/msx-fig6.csv
png=bench/results/msx-fig6.png
log=${TMPDIR:-/tmp}/msx-experiment.log

MSX_EXP_SAMPLES="$PWD/$csv" flock /tmp/rloc-heavy.lock \
	"$GO" test ./e2e -run '^$' -bench '^BenchmarkMSXResolution$' -benchtime 1x -count 1 -timeout 20m | tee "$log"
grep -q '^ok' "$log"
"$GO" run ./bench/cdfplot -in "$csv" -out "$png" \
	-title "LISP-MSX lab: resolving a domain-2 EID from domain 1 (700 each; $(date -u +%F))" \
	-label 'invoke=(1) interconnect, invoke (direct to the Map-Server)' \
	-label 'ddt-near=(2) DDT, root in the local network (cold)' \
	-label 'ddt-far=(3) DDT, root in another country (cold)' \
	-label 'copy=(4) interconnect, local copy'
echo "samples: $csv; figure: $png; benchmark output: $log"
