#!/usr/bin/env bash
# Fuzzes every target for a bounded time: `fuzz/run.sh [SECONDS]` (default 60,
# shared equally between the targets). Installs cargo-fuzz when it is missing.
#
# cargo-fuzz hands rustc nightly-only flags (-Zsanitizer=address and friends).
# The machines this project runs on have one stable toolchain and cannot fetch
# a nightly, so RUSTC_BOOTSTRAP=1 lets the stable rustc accept those flags; set
# FUZZ_TOOLCHAIN=nightly to use a nightly toolchain instead.
#
# New inputs go to fuzz/work/<target> (ignored by git); the seed corpus in
# fuzz/corpus/<target> is only read. A crash leaves its input in
# fuzz/artifacts/<target>/ and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
targets=(${FUZZ_TARGETS:-parse exchange})
per=$(( seconds / ${#targets[@]} ))
(( per >= 1 )) || per=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
toolchain=()
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
  toolchain=("+$FUZZ_TOOLCHAIN")
else
  export RUSTC_BOOTSTRAP=1
fi

cargo "${toolchain[@]}" fuzz build
for target in "${targets[@]}"; do
  # Heads up to the 8 KiB limit and past it for parse; a few requests for exchange.
  max_len=9000
  [[ $target == exchange ]] && max_len=4096
  mkdir -p "work/$target"
  echo "==> fuzzing $target for ${per}s"
  # grep only hides libFuzzer's progress lines; the fuzzer's status decides.
  if ! cargo "${toolchain[@]}" fuzz run "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$per" -max_len="$max_len" -timeout=30 -print_final_stats=1 2>&1 |
    { grep -E -A3 '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY|artifact' || true; }; then
    echo "fuzz target $target failed: its input is in fuzz/artifacts/$target/"
    exit 1
  fi
done
