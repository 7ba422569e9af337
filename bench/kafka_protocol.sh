#!/usr/bin/env bash
# Produce and consume through `sluice server`'s Kafka port with a real client (kcat, i.e.
# librdkafka) against the same 100-byte records appended and read natively (`sluice perf`),
# in the same run. "Per core" = records per CPU-second (user + sys) of the sluice process:
# the server's CPU is read from /proc around each client run; the native figure is the
# `sluice perf` process's own. Both topics use flush.policy=on-roll (the same durability).
#   bench/kafka_protocol.sh [RECORDS] [ROUNDS]   (needs target/release/sluice and kcat)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SLUICE_BIN:-./target/release/sluice}
N=${1:-2000000}
ROUNDS=${2:-2}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-kbench.XXXXXX")
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
TICKS=$(getconf CLK_TCK)

# CPU seconds (user + sys) a process has used so far.
cpu_of() { awk -v t="$TICKS" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }
# Seconds since the epoch, with fractions.
now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }

# N values of 100 bytes (99 characters and the newline kcat splits on).
python3 -c "
import sys
line = ('x' * 90 + '%09d')
out = sys.stdout
for i in range($N):
    out.write(line % i + '\n')
" > "$DIR/records.txt"
# Written back before anything is measured: with the 1 GB input still dirty in the page
# cache, the server's writes at 10 M records cost 2.5-2.9 s of system time instead of
# ~0.7 s (the kernel's dirty-page throttling charged to the writer; session ten's finding).
sync

for r in $(seq "$ROUNDS"); do
  echo "== round $r ($N records of 100 bytes)"
  rm -rf "$DIR/native" "$DIR/served"
  sync

  # Native: the log appended and read in-process.
  export SLUICE_DATA_DIR="$DIR/native"
  $S topics create t --config flush.policy=on-roll ${TOPIC_CONFIG:+--config "$TOPIC_CONFIG"} >/dev/null
  # `sluice perf` reports records per CPU-second of its own append/read loop.
  per_core() { sed -n 's/.* \([0-9]*\) records\/sec per core.*/\1/p' | head -1; }
  line=$($S perf produce t --records "$N" --record-size 100 --batch-size 1000 | sed -n 1p)
  native_produce=$(echo "$line" | per_core)
  echo "native produce: $native_produce records/CPU-s  [$line]"
  line=$($S perf consume t --records "$N" | sed -n 1p)
  native_consume=$(echo "$line" | per_core)
  echo "native consume: $native_consume records/CPU-s  [$line]"

  # Through the Kafka port.
  export SLUICE_DATA_DIR="$DIR/served"
  $S topics create t --config flush.policy=on-roll ${TOPIC_CONFIG:+--config "$TOPIC_CONFIG"} >/dev/null
  $S server --kafka 127.0.0.1:0 --http off > "$DIR/server.out" 2>"$DIR/server.err" &
  SERVER_PID=$!
  for _ in $(seq 100); do grep -q "listening" "$DIR/server.out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(sed -n 's/^Kafka protocol listening on //p' "$DIR/server.out")
  before=$(cpu_of "$SERVER_PID"); t0=$(now)
  kcat -P -b "$ADDR" -t t -l "$DIR/records.txt" -z none \
    -X linger.ms=5 -X batch.num.messages=10000 -X queue.buffering.max.messages=2000000 \
    -X queue.buffering.max.kbytes=2097151
  t1=$(now); after=$(cpu_of "$SERVER_PID")
  cpu=$(echo "$after - $before" | bc)
  proto_produce=$(rate "$N" "$cpu")
  echo "kcat produce via Kafka port: $proto_produce records/server-CPU-s (server CPU ${cpu}s, wall $(echo "$t1 - $t0" | bc | cut -c1-5)s)"
  before=$(cpu_of "$SERVER_PID"); t0=$(now)
  got=$(kcat -C -b "$ADDR" -t t -o beginning -e -q -f '%o\n' -X fetch.max.bytes=52428800 | wc -l)
  t1=$(now); after=$(cpu_of "$SERVER_PID")
  cpu=$(echo "$after - $before" | bc)
  proto_consume=$(rate "$N" "$cpu")
  echo "kcat consume via Kafka port: $proto_consume records/server-CPU-s ($got records, server CPU ${cpu}s, wall $(echo "$t1 - $t0" | bc | cut -c1-5)s)"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  [ "$got" -eq "$N" ] || { echo "consumed $got of $N records" >&2; exit 1; }
  echo "ratio produce: $(awk -v a="$proto_produce" -v b="$native_produce" 'BEGIN{printf "%.2f", a/b}')  consume: $(awk -v a="$proto_consume" -v b="$native_consume" 'BEGIN{printf "%.2f", a/b}')"
done
