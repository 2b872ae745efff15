#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it: `scripts/test.sh`.
# Uses CARGO_TARGET_DIR when set (CI may point it at a directory outside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo is not installed (https://rustup.rs)" >&2
  exit 1
fi
# The live tests (tests/it/live.rs) run moto from the project's Python environment .venv: create
# or update it (fast when it is up to date; fails with the reason when Python is unusable).
scripts/setup-venv.sh
# Tests must never reach the EC2 instance metadata service or a developer's AWS profile.
export AWS_EC2_METADATA_DISABLED=true
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked --all-targets "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
