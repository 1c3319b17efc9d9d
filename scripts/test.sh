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
# A full run gains nothing from incremental compilation, which doubles the
# size of the build cache (2.5 of 5 GB measured); CI machines may be short
# of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Free disk: the build cache needs about 3 GB. Old incremental state is the
# first thing to go when space is short; a full cache is cleared if still short.
free_mb() { df -Pm "$1" 2>/dev/null | awk 'NR==2 {print $4}'; }
mkdir -p "$CARGO_TARGET_DIR"
echo "== disk: $(free_mb "$CARGO_TARGET_DIR") MB free for $CARGO_TARGET_DIR ($(du -sm "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1) MB used)"
if [ "$(free_mb "$CARGO_TARGET_DIR")" -lt 6000 ]; then
  echo "== disk: short of space, removing incremental build state"
  rm -rf "$CARGO_TARGET_DIR"/debug/incremental "$CARGO_TARGET_DIR"/release/incremental
  if [ "$(free_mb "$CARGO_TARGET_DIR")" -lt 4000 ]; then
    echo "== disk: still short, clearing the build cache"
    rm -rf "${CARGO_TARGET_DIR:?}"/debug
  fi
  echo "== disk: $(free_mb "$CARGO_TARGET_DIR") MB free"
fi

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

# The runner: cargo-nextest gives every test its own process and deadline
# (.config/nextest.toml) and writes a JUnit report.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "== installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# One line per step with its duration; the summary at the end lists them.
steps=()
step() {
  local name=$1; shift
  echo "== ${name}: $*"
  local start=$SECONDS
  set +e
  "$@"
  local rc=$?
  set -e
  local took=$((SECONDS - start))
  steps+=("$(printf '%-10s %4ds  %s' "$name" "$took" "$([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)")")")
  echo "== ${name}: $([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)") in ${took}s"
  return $rc
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets --quiet -- -D warnings
# The muster binary the end-to-end tests start as real processes.
step build cargo build -p muster --quiet

# Tests that need what CI cannot have are #[ignore = "reason"], the reason
# ending in "set VAR to run"; each runs when its VAR is set.
ignored_tests() { grep -rnE '#\[ignore = ".*"\]' crates --include='*.rs' || true; }
ignored_var() { echo "$1" | sed -nE 's/.*set ([A-Z0-9_]+) to run.*/\1/p'; }
# The first `fn name` at or after the attribute's line. One process, no
# pipe: a reader that stops early must not SIGPIPE a writer under pipefail.
ignored_name() {
  local file=${1%%:*} rest=${1#*:}
  awk -v from="${rest%%:*}" 'NR >= from && match($0, /fn [a-z0-9_]+/) { print substr($0, RSTART + 3, RLENGTH - 3); exit }' "$file"
}
ignored_args=()
missing=()
any_present=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  var=$(ignored_var "$line")
  if [ -n "$var" ] && [ -n "${!var:-}" ]; then any_present=1; else missing+=("test(=$(ignored_name "$line"))"); fi
done < <(ignored_tests)
if [ "$any_present" = 1 ]; then
  ignored_args=(--run-ignored all)
  if [ ${#missing[@]} -gt 0 ]; then
    filter=$(IFS='|'; echo "${missing[*]}" | sed 's/|/ | /g')
    ignored_args+=(-E "not ($filter)")
  fi
fi
# nextest keeps its report in its store: <target dir>/nextest, though some
# versions put it under ./target/nextest; the summary reads whichever exists.
junit="${CARGO_TARGET_DIR}/nextest/default/junit.xml"
junit_alt="target/nextest/default/junit.xml"
rm -f "$junit" "$junit_alt"
threads=()
if [ -n "${MUSTER_TEST_THREADS:-}" ]; then threads=(--test-threads "$MUSTER_TEST_THREADS"); fi
status=0
step tests cargo nextest run --workspace --no-fail-fast --cargo-quiet "${threads[@]}" "${ignored_args[@]}" || status=1
# Examples in doc comments are tests too (marked `ignore` ones excepted).
step doctests cargo test --workspace --doc --quiet || status=1

# ---- summary -------------------------------------------------------------
# No pipefail from here: `head` closing a pipe early (SIGPIPE to `sort` or
# `grep`) must not end the script before its closing line.
set +o pipefail
if [ ! -f "$junit" ] && [ -f "$junit_alt" ]; then
  mkdir -p "$(dirname "$junit")" && cp "$junit_alt" "$junit"
fi
echo
echo "== summary"
for s in "${steps[@]}"; do echo "  $s"; done
passed=0; failed=0
if [ -f "$junit" ]; then
  # <testsuites name=... tests="N" failures="F" errors="E" ...>
  head_line=$(grep -m1 -o '<testsuites [^>]*>' "$junit")
  attr() { echo "$head_line" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  total=$(attr tests); failures=$(attr failures); errors=$(attr errors)
  failed=$(( ${failures:-0} + ${errors:-0} ))
  passed=$(( ${total:-0} - failed ))
  if [ "$failed" -gt 0 ]; then
    echo "  failed tests:"
    # A failing <testcase> is followed by a <failure> or <error> element.
    awk '/<testcase /{ match($0, /name="[^"]*"/); n=substr($0, RSTART+6, RLENGTH-7);
                       match($0, /classname="[^"]*"/); c=substr($0, RSTART+11, RLENGTH-12) }
         /<(failure|error)[ >]/{ print "    " c " " n }' "$junit" | sort -u
  fi
  echo "  slowest tests:"
  awk '/<testcase /{ match($0, /name="[^"]*"/); n=substr($0, RSTART+6, RLENGTH-7);
                     match($0, /classname="[^"]*"/); c=substr($0, RSTART+11, RLENGTH-12);
                     match($0, / time="[0-9.]*"/); t=substr($0, RSTART+7, RLENGTH-8);
                     printf "%8.1fs  %s %s\n", t, c, n }' "$junit" | sort -rn | head -10
else
  echo "  no JUnit report at $junit (the test step did not run to the end)"
  failed=1
fi
# Every ignored test, with its reason.
while IFS= read -r line; do
  [ -n "$line" ] || continue
  file=${line%%:*}
  reason=$(echo "$line" | sed -E 's/.*#\[ignore = "(.*)"\].*/\1/')
  name=$(ignored_name "$line")
  var=$(ignored_var "$line")
  if [ -n "$var" ] && [ -n "${!var:-}" ]; then
    echo "  ran ignored: $file $name"
  else
    echo "  skipped: $file $name: $reason"
  fi
done < <(ignored_tests)
echo "muster: ${passed} passed, ${failed} failed"
exit "$status"
