#!/usr/bin/env bash
# Storage throughput, measured beside the raw disk in the same run (this machine is shared
# and noisy: compare the ratios, not the absolute numbers).
#   bench/storage.sh [ROUNDS]      (needs target/release/sluice: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
S=./target/release/sluice
ROUNDS=${1:-3}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
export SLUICE_DATA_DIR="$DIR/data"
$S topics create onroll --config flush.policy=on-roll >/dev/null
$S topics create always >/dev/null
$S topics create big --config flush.policy=on-roll --config max.message.bytes=2000000 >/dev/null
for r in $(seq "$ROUNDS"); do
  echo "== round $r"
  sync
  dd if=/dev/zero of="$DIR/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1 | sed 's/^/dd: /'
  rm -f "$DIR/dd.bin"
  $S perf produce onroll --records 5000000 --record-size 100 --batch-size 1000 | head -1 | sed 's/^/on-roll 100B: /'
  $S perf produce always --records 2000000 --record-size 100 --batch-size 1000 | head -1 | sed 's/^/always 100B: /'
  $S perf produce always --records 2000000 --record-size 100 --batch-size 1000 --threads 4 | head -1 | sed 's/^/always 100B x4 threads: /'
  $S perf produce big --records 16384 --record-size 65536 --batch-size 16 | head -1 | sed 's/^/on-roll 64KiB: /'
  $S perf consume onroll --records 5000000 | sed 's/^/read 100B: /'
done
