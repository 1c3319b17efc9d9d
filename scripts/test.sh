#!/usr/bin/env bash
# Runs every muster test on a fresh machine: installs what is missing, then
# formatting, lints and the whole test suite. This is the README's test
# command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# A build cache outside the clone survives fresh clones on the same machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/muster-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"; \
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}"; fi
fi
# The web UI tests drive real headless Chromium through chromedriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "== installing chromium chromium-driver"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; fi
fi
# The PostgreSQL store tests start their own throwaway server with the
# package's initdb/pg_ctl (crates/muster-store/tests/it/pg_harness.rs). The
# system cluster is neither created nor started: createcluster.conf says so
# before the package is installed, and the install keeps that file.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "== installing postgresql"
  pg_install='if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
      mkdir -p /etc/postgresql-common && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf; fi
    apt-get update -qq && UCF_FORCE_CONFFOLD=1 DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql'
  if [ "$(id -u)" = 0 ]; then sh -c "$pg_install"; else sudo sh -c "$pg_install"; fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo build (the muster binary used by end-to-end tests)"
cargo build -p muster --quiet

echo "== cargo test"
set +e
cargo test --workspace --quiet -- --test-threads="${MUSTER_TEST_THREADS:-4}" 2>&1 | tee "${CARGO_TARGET_DIR}/test-output.txt"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '[0-9]+ passed' "${CARGO_TARGET_DIR}/test-output.txt" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "${CARGO_TARGET_DIR}/test-output.txt" | awk '{s+=$1} END {print s+0}')
echo "muster: ${passed} passed, ${failed} failed"
exit "$status"
