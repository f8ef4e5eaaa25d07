#!/usr/bin/env bash
# `make msx-experiment`: the LISP-MSX experiment (issue 15, the article's
# Fig. 6; docs/msx-experiment.md): BenchmarkMSXResolution on
# configs/lab/msx-exp.yaml (700 resolutions of a domain-2 EID in each of six
# scenarios: four Map-Resolvers of domain 1, the DDT ones through a deep and
# a flat tree), its samples written to
# bench/results/msx-fig6.csv, then the CDF drawn to bench/results/msx-fig6.png
# (bench/cdfplot). Needs root (namespaces, XDP). Takes about three minutes; holds
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
	-label 'ddt-near-deep=(2) DDT, local root, 3-level tree (cold)' \
	-label 'ddt-far-deep=(3) DDT, root in another country, 3-level tree (cold)' \
	-label 'copy=(4) interconnect, local copy' \
	-label 'ddt-near=(2f) DDT, local root, flat: root -> Map-Server (cold)' \
	-label 'ddt-far=(3f) DDT, distant root, flat (cold)'
echo "samples: $csv; figure: $png; benchmark output: $log"
