#!/usr/bin/env bash
# Bounded fuzzing for CI: builds the cargo-fuzz targets once, runs each from the committed seeds
# (fuzz/seeds/<target>/) for a bounded time, and fails on the first crash, leak, timeout or
# oracle disagreement (the target panics; libFuzzer exits non-zero and saves the input).
#
#   bash fuzz/ci.sh                      # every target, 60 s each
#   FUZZ_SECONDS=600 bash fuzz/ci.sh decide
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 60): libFuzzer's -max_total_time
#   FUZZ_TARGET_DIR   cargo target dir (default: ~/.cache/tlsboot/fuzz-target in CI, so a later
#                     run on the same machine rebuilds only what changed; fuzz/target otherwise)
#
# Toolchain: the machine's *stable* Rust. cargo-fuzz needs nightly only for sanitizers
# (-Zsanitizer) and -Zbuild-std; with `--sanitizer none` it passes only stable -C flags
# (the SanitizerCoverage pass and its LLVM options), so no nightly is required and none is
# downloaded (the rustup dist server is not something CI may rely on). AddressSanitizer would
# add little here: the policy and the oracle are safe Rust (`unsafe_code = "forbid"`), and the
# C/assembly inside ring is not instrumented by RUSTFLAGS either way. Debug assertions are on,
# so an integer overflow is a crash.
set -euo pipefail
if [[ -n "${FUZZ_TARGET_DIR:-}" ]]; then
  # Relative to where the caller stands, as any path argument would be.
  mkdir -p "$FUZZ_TARGET_DIR"
  FUZZ_TARGET_DIR=$(cd "$FUZZ_TARGET_DIR" && pwd)
fi
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
((${#targets[@]})) || targets=(parse_csr parse_csr_der decide)
if [[ -n "${FUZZ_TARGET_DIR:-}" ]]; then
  target_dir=$FUZZ_TARGET_DIR
elif [[ -n "${CI:-}" ]]; then
  target_dir="${XDG_CACHE_HOME:-$HOME/.cache}/tlsboot/fuzz-target"
else
  target_dir=target
fi
mkdir -p "$target_dir"
target_dir=$(cd "$target_dir" && pwd)

cargo_fuzz_version=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz $cargo_fuzz_version from crates.io"
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi
cargo fuzz --version

flags=(--sanitizer none --debug-assertions --target-dir "$target_dir")
start=$(date +%s)
cargo fuzz build "${flags[@]}"
echo "fuzz: build took $(($(date +%s) - start)) s"

failed=()
for t in "${targets[@]}"; do
  [[ -d "seeds/$t" ]] || { echo "fuzz: no seeds/$t" >&2; exit 1; }
  # New inputs go to corpus/<t> (ignored by git); the committed seeds are only read.
  mkdir -p "corpus/$t" "artifacts/$t"
  log="$target_dir/fuzz-$t.log"
  echo "fuzz: $t for ${seconds}s from $(ls "seeds/$t" | wc -l) seeds"
  set +e
  cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -max_len=8192 -timeout=30 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  # The last coverage line and libFuzzer's final statistics: the figures docs/security.md quotes.
  grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -2 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
  if ((rc != 0)); then
    echo "fuzz: $t FAILED (exit $rc); the end of its log:" >&2
    tail -60 "$log" >&2
    ls -l "artifacts/$t" >&2 || true
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/; reproduce with" \
    "cargo fuzz run -s none --debug-assertions <target> <artifact>)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
