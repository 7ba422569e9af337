#!/usr/bin/env bash
# librdkafka's own integration test suite against a running `sluice server`.
#
#   run.sh build                       fetch and build librdkafka's test-runner (cached)
#   run.sh run BOOTSTRAP TEST...       run the named tests (e.g. 0001 0012), one process
#                                      each, against BOOTSTRAP (host:port)
#
# The suite ships inside the `rdkafka-sys` crate on crates.io (pinned below, checked by
# sha256). It is built without SSL/SASL/curl (~1 minute on 2 cores) into
# $SLUICE_CACHE/librdkafka-<version> (default ~/.cache/sluice). Each test runs in quick
# mode (-Q) as a plain-broker test (-L: no local-only tests, -K: none of those librdkafka
# marks as known issues), with TEST_TIMEOUT seconds at most (default 180). One line per
# test goes to stdout: `PASS 0001`, `SKIP 0001 (reason)` or `FAIL 0001 (reason)`; each
# test's full output is kept in $LOG_DIR (default a temporary directory, printed).
set -euo pipefail

CRATE_VERSION="4.10.0+2.12.1"
CRATE_SHA256="e234cf318915c1059d4921ef7f75616b5219b10b46e9f3a511a15eb4b56a3f77"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
ROOT="$CACHE/librdkafka-$CRATE_VERSION"
LIB="$ROOT/rdkafka-sys-$CRATE_VERSION/librdkafka"

build() {
    if [[ -x "$LIB/tests/test-runner" ]]; then
        return 0
    fi
    mkdir -p "$ROOT"
    local crate="$ROOT/rdkafka-sys.crate"
    if [[ ! -f "$crate" ]]; then
        curl -sSfL --retry 3 -o "$crate.part" \
            "https://static.crates.io/crates/rdkafka-sys/rdkafka-sys-$CRATE_VERSION.crate"
        mv "$crate.part" "$crate"
    fi
    echo "$CRATE_SHA256  $crate" | sha256sum -c --quiet
    rm -rf "$ROOT/rdkafka-sys-$CRATE_VERSION"
    tar xzf "$crate" -C "$ROOT"
    (
        cd "$LIB"
        ./configure --disable-ssl --disable-gssapi --disable-curl --disable-sasl \
            >"$ROOT/configure.log" 2>&1
        make -j2 libs >"$ROOT/make.log" 2>&1
        make -C tests -j2 build >"$ROOT/tests.log" 2>&1
    ) || { echo "building librdkafka failed: see $ROOT/*.log" >&2; exit 1; }
}

run() {
    local bootstrap="$1"
    shift
    local logs="${LOG_DIR:-$(mktemp -d)}"
    mkdir -p "$logs"
    echo "logs in $logs" >&2
    local conf="$logs/test.conf"
    printf 'bootstrap.servers=%s\n' "$bootstrap" >"$conf"
    # Test 0014 keeps consumer offsets in files (offset.store.method=file) in the tests'
    # directory, named by topic; its "random" topic names come round again across runs,
    # and an earlier run's file (offset 100) then starts the consumer at the end, where
    # it waits until the test times out. Each run starts without them.
    rm -f "$LIB/tests/"*.offset
    for test in "$@"; do
        local log="$logs/$test.log"
        local status=0
        # The test's own topics are named per run; -V: the broker version Sluice speaks.
        (cd "$LIB/tests" && exec env RDKAFKA_TEST_CONF="$conf" LD_LIBRARY_PATH=../src:../src-cpp \
            timeout -k 10 "${TEST_TIMEOUT:-180}" ./test-runner -Q -L -K -V 3.9.0 "$test" \
            >"$log" 2>&1) || status=$?
        local plain
        plain="$(sed 's/\x1b\[[0-9;]*m//g' "$log")"
        if [[ $status -eq 124 || $status -eq 137 ]]; then
            echo "FAIL $test (timed out after ${TEST_TIMEOUT:-180}s)"
        elif [[ $status -ne 0 ]] || grep -q "TEST FAILURE" <<<"$plain"; then
            local why
            why="$(grep -m1 -A1 '### Test .* failed at' <<<"$plain" | tail -1 | cut -c1-160 || true)"
            echo "FAIL $test (exit $status: ${why:-see $log})"
        elif grep -q "Test ${test}[a-z0-9_]* PASSED" <<<"$plain"; then
            echo "PASS $test"
        else
            local why
            why="$(grep -m1 'SKIPPING TEST' <<<"$plain" | sed 's/.*SKIPPING TEST: //' | cut -c1-120 || true)"
            echo "SKIP $test (${why:-no test ran})"
        fi
    done
}

case "${1:-}" in
    build) build ;;
    run) shift; build; run "$@" ;;
    *) echo "usage: $0 build | run BOOTSTRAP TEST..." >&2; exit 2 ;;
esac
