#!/usr/bin/env bash
# cks-doctor's benchmark: prints figures (it is not a test and asserts nothing about speed).
#
#   bench/run.sh [--debug] [--write-doc] [--runs N] [--jobs1-runs N] [--startup-runs N]
#                [--delay-ms MS] [--budget-seconds S] [--json FILE]
#   bench/run.sh --org [--debug] [--write-doc] [--accounts N] [--stores N] [--runs N] [--delay-ms MS]
#
# --org runs bench/org.py instead: a scan of an organisation (100 accounts × 4 Regions × 2
# CloudHSM stores by default) through the latency proxy.
#
# Builds cks-doctor and the test XKS proxy example (release by default; --debug uses the debug
# build), makes sure the Python environment of the live tests exists (scripts/setup-venv.sh),
# then runs bench/bench.py, which starts tests/live/server.py, the test XKS proxy and
# bench/latency_proxy.py on 127.0.0.1, measures, stops them, and prints a table.
# --write-doc puts the figures into docs/performance.md. Method: docs/performance.md.
#
# Peak memory needs GNU time at /usr/bin/time (`apt-get install time`); without it the figure
# is reported as "not measured".
#
# Every server is stopped on exit: the driver kills its children, and each child also exits
# when its stdin (a pipe from the driver) closes, so even a killed driver leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
pass=()
org=""
while [ $# -gt 0 ]; do
  case "$1" in
    --org) org=1 ;;
    --debug) profile=debug ;;
    --release) profile=release ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) pass+=("$1") ;;
  esac
  shift
done

scripts/setup-venv.sh

# Bounded: the build may take a while on 2 cores the first time (aws-sdk-ec2 is large).
build_timeout="${CKS_BENCH_BUILD_TIMEOUT:-3600}"
if [ "$profile" = release ]; then
  timeout --foreground "$build_timeout" cargo build --release --bin cks-doctor --example xks_test_proxy
  dir=target/release
else
  timeout --foreground "$build_timeout" cargo build --bin cks-doctor --example xks_test_proxy
  dir=target/debug
fi
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$PWD/target")"
dir="$target_dir/${dir#target/}"

driver=""
cleanup() {
  if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    wait "$driver" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

if [ -n "$org" ]; then
  .venv/bin/python bench/org.py --binary "$dir/cks-doctor" --build "$profile" ${pass[@]+"${pass[@]}"} &
  driver=$!
  status=0
  wait "$driver" || status=$?
  driver=""
  exit "$status"
fi

.venv/bin/python bench/bench.py --binary "$dir/cks-doctor" --xks-proxy "$dir/examples/xks_test_proxy" \
  --build "$profile" ${pass[@]+"${pass[@]}"} &
driver=$!
status=0
wait "$driver" || status=$?
driver=""
exit "$status"
