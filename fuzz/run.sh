#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) on stable Rust: the
# address sanitizer needs nightly, so `-s none`; debug assertions are on.
# Installs cargo-fuzz when missing. Prints each target's executions; exits
# non-zero when a target finds a crash (the input is kept in
# fuzz/artifacts/TARGET/). Corpora stay in fuzz/corpus (ignored by git).
#
#   bash fuzz/run.sh 300      # CI runs `bash fuzz/run.sh 5`, a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
failed=()
for target in request_line reply_header names status; do
  if cargo fuzz run -s none --debug-assertions "$target" -- -max_total_time="$SECONDS_EACH" > "$LOG" 2>&1; then
    echo "$target: $(grep -a -E '^Done [0-9]+ runs' "$LOG" | tail -1)"
  else
    echo "$target: FAILED"
    grep -a -E 'panicked|SUMMARY|Test unit written|error' "$LOG" | head -5
    failed+=("$target")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzzing found crashes in: ${failed[*]}" >&2; exit 1; }
