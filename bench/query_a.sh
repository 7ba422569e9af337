#!/usr/bin/env bash
# Query A of ../shared/peers (stateless: WHERE auction % 123 = 0, price * 0.908) as a
# persistent CREATE STREAM … AS SELECT over the peers' 2 million bids, log -> log, beside
# the storage append and read rates of the same run and (optionally) DuckDB and Flink on
# the same bids. Per core = records / CPU-seconds (user + sys) of the sluice process.
#   bench/query_a.sh [ROUNDS] [PEERS]   (needs target/release/sluice: cargo build --release;
#   SLUICE_BIN=path runs another build, e.g. a baseline, the same way)
# PEERS=1 also runs DuckDB (queries A and B) on the same bids via ../shared/peers; FLINK=1 adds
# Flink (its first run installs PyFlink). BIDS=file reuses a generated bids file.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SLUICE_BIN:-$PWD/target/release/sluice}
ROUNDS=${1:-3}
PEERS=${2:-0}
N=${N:-2000000}
SHARED=${SHARED:-$PWD/../shared}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-qa.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
BIDS=${BIDS:-$DIR/bids.jsonl}
[ -f "$BIDS" ] || python3 "$SHARED/peers/gen.py" "$N" "$BIDS" >/dev/null

# CPU seconds (user+sys) and wall seconds of a command, via GNU time's format.
timed() { /usr/bin/time -f "%e %U %S" -o "$DIR/time" "$@" >/dev/null; read -r wall user sys < "$DIR/time"; }

for r in $(seq "$ROUNDS"); do
  echo "== round $r"
  export SLUICE_DATA_DIR="$DIR/data-$r"
  $S topics create bids --config flush.policy=on-roll >/dev/null
  timed $S produce bids --partition 0 < "$BIDS"
  echo "load (sluice produce, JSON lines from a file): $(python3 -c "print(f'{$N/($user+$sys)/1e6:.2f} M rec/s per core, {$N/$wall/1e6:.2f} M rec/s wall')")"
  $S topics create perf --config flush.policy=on-roll >/dev/null
  $S perf produce perf --records 2000000 --record-size 150 --batch-size 1000 | head -1 | sed 's/^/storage append 150B: /'
  $S perf consume bids --records "$N" | sed 's/^/storage read bids: /'
  timed $S sql --execute "
    CREATE STREAM bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, ts BIGINT)
      WITH (KAFKA_TOPIC='bids', VALUE_FORMAT='JSON');
    SET 'auto.offset.reset'='earliest';
    CREATE STREAM query_a AS SELECT auction, bidder, price * 0.908 AS euro, ts FROM bids WHERE auction % 123 = 0;"
  out=$($S consume QUERY_A --from-beginning --timeout-ms 200 2>/dev/null | wc -l)
  echo "query A (log -> log, $out rows out): $(python3 -c "print(f'{$N/($user+$sys)/1e6:.2f} M rec/s per core ({$user}+{$sys} CPU s), {$N/$wall/1e6:.2f} M rec/s wall ({$wall} s incl. start-up)')")"
  rm -rf "$SLUICE_DATA_DIR"
done

if [ "$PEERS" = 1 ]; then
  export PEERS_WORK=${PEERS_WORK:-$HOME/.cache/sluice/peers-work}
  mkdir -p "$PEERS_WORK/data"
  ln -sf "$BIDS" "$PEERS_WORK/data/bids.jsonl"
  (cd "$PEERS_WORK" && REPS=${PEER_REPS:-1} bash "$SHARED/peers/run_duckdb.sh") || true
  [ "${FLINK:-0}" = 1 ] && (cd "$PEERS_WORK" && REPS=${PEER_REPS:-1} bash "$SHARED/peers/run_flink.sh") || true
  python3 "$SHARED/peers/summarize.py" "$PEERS_WORK/results/results.tsv" || true
fi
