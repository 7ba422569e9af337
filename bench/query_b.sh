#!/usr/bin/env bash
# Query B of ../shared/peers (per auction, 10-second tumbling event-time windows: COUNT(*),
# SUM(price), MAX(price), 100 ms of lateness allowed as the peers do) as a persistent
# CREATE TABLE … AS SELECT over the peers' 2 million bids, log -> log (one changelog update per bid, as ksqlDB emits with caching off), beside
# query A (stateless) of the same run. Per core = records / CPU-seconds (user + sys) of the
# sluice process; peak memory is its maximum resident set.
# Also the stream-table join of the bids against a 100,000-row table of auctions (keyed by
# id, loaded before the bids), log -> log.
#   bench/query_b.sh [ROUNDS]   (needs target/release/sluice: cargo build --release;
#   SLUICE_BIN=path runs another build the same way; BIDS=file reuses a generated bids file)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SLUICE_BIN:-$PWD/target/release/sluice}
ROUNDS=${1:-3}
N=${N:-2000000}
SHARED=${SHARED:-$PWD/../shared}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-qb.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
BIDS=${BIDS:-$DIR/bids.jsonl}
[ -f "$BIDS" ] || python3 "$SHARED/peers/gen.py" "$N" "$BIDS" >/dev/null

# CPU seconds (user+sys), wall seconds and peak RSS (KB) of a command, via GNU time.
timed() { /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" "$@" >/dev/null; read -r wall user sys rss < "$DIR/time"; }
rate() { python3 -c "print(f'{$N/($user+$sys)/1e6:.2f} M rec/s per core ({$user}+{$sys} CPU s), {$N/$wall/1e6:.2f} M rec/s wall, peak RSS {$rss/1024:.0f} MB')"; }

STREAM="CREATE STREAM bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, ts BIGINT)
      WITH (KAFKA_TOPIC='bids', VALUE_FORMAT='JSON', TIMESTAMP='ts');
    SET 'auto.offset.reset'='earliest';"
TABLE="$DIR/auctions.txt"
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "%d|{\"SELLER\":%d,\"CATEGORY\":%d,\"NAME\":\"auction-%d\"}\n", i, (i * 7) % 5000, i % 40, i }' > "$TABLE"
# A fresh data directory holding the bids (after the auctions table when `$2` is
# `auctions`: it must be older than the bids), and the (empty) sink topic `$1`: the bids'
# event times are from 2023, so the sink keeps records whatever their time.
fresh() {
  rm -rf "$SLUICE_DATA_DIR"
  if [ "${2:-}" = auctions ]; then
    $S topics create auctions --config flush.policy=on-roll >/dev/null
    $S produce auctions --partition 0 --key-separator '|' < "$TABLE" >/dev/null
  fi
  $S topics create bids --config flush.policy=on-roll >/dev/null
  $S produce bids --partition 0 < "$BIDS" >/dev/null
  $S topics create "$1" --config retention.ms=-1 >/dev/null
}
# Runs the statements, then prints the label, the sink's record count and the rate.
run() {
  local label=$1 sink=$2 sql=$3
  timed $S sql --execute "$sql"
  out=$($S consume "$sink" --from-beginning --timeout-ms 200 2>/dev/null | wc -l)
  echo "$label ($out records out): $(rate)"
}
QUERY_B="CREATE TABLE query_b AS SELECT auction, COUNT(*) AS cnt, SUM(price) AS sum_price, MAX(price) AS max_price
      FROM bids WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 100 MILLISECONDS) GROUP BY auction"
for r in $(seq "$ROUNDS"); do
  echo "== round $r"
  export SLUICE_DATA_DIR="$DIR/data-$r"
  fresh QUERY_A
  run "query A (stateless)" QUERY_A "$STREAM
    CREATE STREAM query_a AS SELECT auction, bidder, price * 0.908 AS euro, ts FROM bids WHERE auction % 123 = 0;"
  fresh QUERY_B
  run "query B (window, EMIT CHANGES)" QUERY_B "$STREAM $QUERY_B;"
  # The same with EMIT FINAL: one row per closed window, as Flink's tumbling window emits.
  fresh QUERY_B
  run "query B (window, EMIT FINAL)" QUERY_B "$STREAM $QUERY_B EMIT FINAL;"
  fresh QUERY_J auctions
  run "stream-table join (100,000-row table)" QUERY_J "
    CREATE STREAM bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, ts BIGINT)
      WITH (KAFKA_TOPIC='bids', VALUE_FORMAT='JSON');
    CREATE TABLE auctions (id BIGINT PRIMARY KEY, seller BIGINT, category BIGINT, name STRING)
      WITH (KAFKA_TOPIC='auctions', KEY_FORMAT='JSON', VALUE_FORMAT='JSON');
    SET 'auto.offset.reset'='earliest';
    CREATE STREAM query_j AS SELECT b.auction, b.price, a.seller, a.category
      FROM bids b JOIN auctions a ON b.auction = a.id;"
done
rm -rf "$SLUICE_DATA_DIR"
