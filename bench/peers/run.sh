#!/usr/bin/env bash
# Nexmark, Sluice beside Apache Flink SQL and DuckDB on the same events in the same run.
#   bench/peers/run.sh [EVENTS]          (default 1,000,000; needs target/release/sluice)
# 1. `sluice bench nexmark --all` generates the events, runs every query (q0-q8) as a
#    persistent query and writes bench/results/nexmark-<date>.{md,json}; the same events are
#    exported as JSON lines.
# 2. Flink (PyFlink, streaming, local mini-cluster, parallelism $FLINK_PAR, default 1) and
#    DuckDB (batch) run the same queries over the export, each measured over its whole
#    process tree (measure.py).
# 3. compare.py prints one table with the ratios and checks every result against Sluice's:
#    a mismatch fails the script.
# RATE=50000 also measures Sluice's end-to-end latency at that offered rate, per query.
# Peers are optional: a peer not installed is said so and skipped. INSTALL_PEERS=1 installs
# them from PyPI (apache-flink, duckdb) into $PEERS_VENVS (default ~/.cache/sluice/peers-work).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${1:-1000000}
S=${SLUICE_BIN:-$ROOT/target/release/sluice}
WORK=${WORK:-$HOME/.cache/sluice/nexmark-work}
VENVS=${PEERS_VENVS:-$HOME/.cache/sluice/peers-work}
FLINK_PAR=${FLINK_PAR:-1}
[ -x "$S" ] || { echo "no $S: run cargo build --release first" >&2; exit 2; }
rm -rf "$WORK" && mkdir -p "$WORK"

# venv DIR PACKAGE MODULE: the venv's python when MODULE imports there (installing it first
# under INSTALL_PEERS=1), else nothing.
venv() {
  local py="$VENVS/$1/bin/python"
  if ! { [ -x "$py" ] && "$py" -c "import $3" 2>/dev/null; }; then
    [ "${INSTALL_PEERS:-0}" = 1 ] || return 0
    python3 -m venv "$VENVS/$1" && "$VENVS/$1/bin/pip" install -q "$2" >&2 || return 0
  fi
  echo "$py"
}

"$S" bench nexmark --all --events "$N" --export "$WORK/events.jsonl" --json "$WORK/sluice.json" \
  --results-dir "$ROOT/bench/results" --work-dir "$WORK" ${RATE:+--rate "$RATE"}
QUERIES=$(python3 -c "import json;print(' '.join(r['query'] for r in json.load(open('$WORK/sluice.json'))['queries']))")

# peer NAME PYTHON HOW-TO-INSTALL: runs every query on a peer under measure.py, or says
# the peer is missing.
peer() {
  local name=$1 py=$2 missing=$3
  if [ -z "$py" ]; then echo "$name: not installed ($missing)"; return; fi
  for q in $QUERIES; do
    echo "$name $q ..." >&2
    local out="$WORK/$name-out-$q" extra=()
    [ "$name" = flink ] && extra=("$FLINK_PAR") || out="$out.csv"
    python3 "$HERE/measure.py" "$WORK/$name-$q.json" "$WORK/$name-$q.log" -- \
      "$py" "$HERE/nexmark_$name.py" "$q" "$WORK/events.jsonl" "$out" "${extra[@]}" || true
  done
}
peer flink "$(venv venv-flink apache-flink pyflink)" \
  "$VENVS/venv-flink has no pyflink; INSTALL_PEERS=1 installs apache-flink from PyPI, Java 11+ needed"
peer duckdb "$(venv venv-duckdb duckdb duckdb)" \
  "$VENVS/venv-duckdb has no duckdb; INSTALL_PEERS=1 installs it from PyPI"
python3 "$HERE/compare.py" "$WORK"
