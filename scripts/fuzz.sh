#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60), one after another, and
# prints per target: runs, time, execs/s, coverage and crashes found.
#
#   scripts/fuzz.sh [SECONDS]            # all targets
#   FUZZ_TARGETS="cert_der snapshot" scripts/fuzz.sh 300
#   FUZZ_SANITIZER=address scripts/fuzz.sh  # with AddressSanitizer (needs far more memory: the
#                                           # sanitized AWS SDK build took >22 GB here)
#
# Installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when missing. Uses the nightly
# toolchain when rustup has one, otherwise the stable one with RUSTC_BOOTSTRAP=1 (cargo-fuzz
# needs -Z flags). Seeds are read from fuzz/corpus/<target>/ (never written to); what libFuzzer
# finds goes to fuzz/work/corpus/<target>/ (kept between runs, ignored by git) and crash inputs
# to fuzz/artifacts/<target>/. To keep a crash as a regression test:
#
#   cargo +nightly fuzz tmin <target> fuzz/artifacts/<target>/crash-...   (in the repository root)
#   mkdir -p fuzz/regressions/<target> && cp <minimized input> fuzz/regressions/<target>/
#
# tests/it/fuzz_regressions.rs replays fuzz/regressions/*/ and fuzz/corpus/*/ in `cargo test`.
# Exit code: 0 when no target crashed, 1 when one did, 2 on a setup or build failure.
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-60}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (seconds per target, default 60)" >&2
  exit 2
fi
SANITIZER="${FUZZ_SANITIZER:-none}"
# Development-profile builds by default: the crate links the AWS SDK, and an optimized,
# sanitized build of aws-sdk-ec2 alone needs more than 20 GB of memory on a 2-core machine.
# FUZZ_RELEASE=1 asks for the optimized build where memory allows: without a sanitizer it built
# in about 8 minutes here (2 cores, 24 GB) and runs the targets 10 to 20 times faster.
PROFILE=(--dev)
[ "${FUZZ_RELEASE:-0}" = 1 ] && PROFILE=()

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: cargo is not installed (https://rustup.rs)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked || exit 2
fi

CARGO=(cargo)
if command -v rustup >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  CARGO=(cargo +nightly)
  toolchain="nightly ($(rustup run nightly rustc --version 2>/dev/null))"
else
  export RUSTC_BOOTSTRAP=1
  toolchain="stable with RUSTC_BOOTSTRAP=1 ($(rustc --version))"
fi

ALL_TARGETS=$(cd fuzz && "${CARGO[@]}" fuzz list) || exit 2
TARGETS="${FUZZ_TARGETS:-$ALL_TARGETS}"
echo "scripts/fuzz.sh: $SECONDS_PER_TARGET s per target, sanitizer $SANITIZER, $toolchain"

# Build once, up front, so that the time per target is spent fuzzing.
build_start=$(date +%s)
if ! "${CARGO[@]}" fuzz build "${PROFILE[@]}" --sanitizer "$SANITIZER"; then
  echo "scripts/fuzz.sh: the fuzz targets do not build" >&2
  exit 2
fi
echo "scripts/fuzz.sh: built in $(( $(date +%s) - build_start )) s"

mkdir -p fuzz/work/logs
summary=()
crashed=0
for t in $TARGETS; do
  seeds="fuzz/corpus/$t"
  work="fuzz/work/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  log="fuzz/work/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$seeds"
  before=$(find "$artifacts" -type f | wc -l)
  echo "== $t: ${SECONDS_PER_TARGET} s (log: $log)"
  start=$(date +%s)
  # The first corpus directory receives new inputs; the seeds are only read.
  "${CARGO[@]}" fuzz run "${PROFILE[@]}" --sanitizer "$SANITIZER" "$t" "$work" "$seeds" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  after=$(find "$artifacts" -type f | wc -l)
  new=$(( after - before ))
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+')
  [ -z "$runs" ] && runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  [ -z "$runs" ] && runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  speed=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  corpus=$(find "$work" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
    crashed=1
    what=$(grep -m1 -oE 'ERROR: libFuzzer: [a-z-]+|panicked at [^ ]+' "$log" | head -1)
    status="CRASH ($new new input(s) in $artifacts/; ${what:-exit code $rc})"
  else
    status="no crash"
  fi
  line=$(printf '%-11s runs %-10s time %4s s  exec/s %-7s %-20s corpus %-5s %s' \
    "$t" "${runs:-?}" "$elapsed" "${speed:-?}" "${cov:-cov ?}" "$corpus" "$status")
  echo "$line"
  summary+=("$line")
done

echo
echo "== summary (${SECONDS_PER_TARGET} s per target)"
printf '%s\n' "${summary[@]}"
if [ "$crashed" -ne 0 ]; then
  echo "scripts/fuzz.sh: a target crashed: see its log in fuzz/work/logs/, minimize the input with" \
    "'cargo fuzz tmin <target> <artifact>' and keep it in fuzz/regressions/<target>/" >&2
  exit 1
fi
