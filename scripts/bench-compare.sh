#!/usr/bin/env bash
# scripts/bench-compare.sh BASE [HEAD]: the footprint of two commits (or two
# prebuilt binaries: a path instead of a revision), side by side, in one run
# (make bench-compare BASE=main). Both are built as releases
# are (static, stripped), then measured in turns (base, head, base, head…) so
# that other work on the box weighs on both alike:
#   - the binary's size;
#   - package initialisation (GODEBUG=inittrace=1): packages, time, bytes
#     allocated, for `tentacle version` and for a script supervisor (the
#     binary re-executed for every script), median of INIT_RUNS runs;
#   - a listening agent's RSS after one call and IDLE_SECS idle;
#   - `remote exec 'echo hi'` to it: p50 and p99 of RUNS runs (after 3 warm-up runs).
# Everything runs on 127.0.0.1 under one temp directory, removed on exit with
# every process started here. Prints a markdown table for docs/benchmarks.md.
#
# Knobs (environment): RUNS (default 100), INIT_RUNS (default 20), ROUNDS
# (turns per binary for RSS, default 3), IDLE_SECS (default 5).
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 1 ] || { echo "usage: $0 BASE [HEAD]  (git revisions; HEAD defaults to the work tree)" >&2; exit 2; }
base_ref=$1
head_ref=${2:-}
RUNS=${RUNS:-100}
INIT_RUNS=${INIT_RUNS:-20}
ROUNDS=${ROUNDS:-3}
IDLE_SECS=${IDLE_SECS:-5}
GO=${GO:-go}

work=$(mktemp -d "${TMPDIR:-/tmp}/tentacle-compare.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"

# init_cost SIDE ARGS...: "packages ms bytes", medians over INIT_RUNS runs,
# of the package initialisation GODEBUG=inittrace=1 reports for ARGS.
init_cost() {
  local side=$1 i
  shift
  # The supervisor is tentacle-supervisor where the side has one (FindSupervisor).
  local run=(tb "$side")
  if [ "$1" = internal-script-supervisor ] && [ -x "$work/$side/tentacle-supervisor" ]; then run=("$work/$side/tentacle-supervisor"); fi
  for ((i = 0; i < INIT_RUNS; i++)); do
    # Only the trace matters: the supervisor without arguments fails, by design.
    { GODEBUG=inittrace=1 "${run[@]}" "$@" 2>&1 >/dev/null </dev/null || true; } |
      awk '/^init / { n++; ms += $5; b += $8 } END { printf "%d %.3f %d\n", n, ms, b }'
  done | sort -n -k2 | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }'
}

# agent SIDE: a listening agent of that side's binary on a free port; sets
# AGENT_PID and the remote-call arguments in L.
agent() {
  local side=$1 port operator tp
  free_port
  port=$REPLY
  rm -rf "${work:?}/$side/etc" "$work/$side/operator.pfx" "$work/$side/listen"
  operator=$(tb "$side" remote new-certificate 2>/dev/null | awk '/Thumbprint/ { print $2 }')
  [ -n "$operator" ] || die "$side: remote new-certificate printed no thumbprint"
  tb "$side" create-instance --instance Compare --config "$work/$side/listen/tentacle.config" >/dev/null
  tb "$side" new-certificate --instance Compare --if-blank >/dev/null
  tb "$side" configure --instance Compare --port "$port" --listenIpAddress 127.0.0.1 --trust "$operator" >/dev/null
  tp=$(tb "$side" show-thumbprint --instance Compare)
  # Not through tb: $! must be the agent itself, not a subshell running it.
  TentacleMachineConfigurationHomeDirectory="$work/$side/etc" "$work/$side/tentacle" agent --instance Compare >"$work/$side/agent.log" 2>&1 &
  AGENT_PID=$!
  pids+=("$AGENT_PID")
  wait_port "$port"
  L=(--endpoint "https://127.0.0.1:$port/" --thumbprint "$tp")
}

stop_agent() {
  kill "$AGENT_PID" 2>/dev/null || true
  wait "$AGENT_PID" 2>/dev/null || true
}

log "Building $base_ref and ${head_ref:-the work tree}..."
build base "$base_ref"
build head "$head_ref"

sides=(base head)
declare -A size rss anon init_version init_super exec_stats
for side in "${sides[@]}"; do size[$side]=$(stat -c %s "$work/$side/tentacle"); done

log "Package initialisation: $INIT_RUNS runs each..."
for side in "${sides[@]}"; do
  init_version[$side]=$(init_cost "$side" version)
  # The supervisor exits at once without its arguments; its initialisation
  # is the same as when it runs a script.
  init_super[$side]=$(init_cost "$side" internal-script-supervisor)
done

log "Idle listening agent: $ROUNDS rounds of ${IDLE_SECS} s, in turns..."
for ((round = 0; round < ROUNDS; round++)); do
  for side in "${sides[@]}"; do
    agent "$side"
    tb "$side" remote capabilities "${L[@]}" >/dev/null
    sleep "$IDLE_SECS"
    rss[$side]+="$(rss_kb "$AGENT_PID") "
    anon[$side]+="$(anon_kb "$AGENT_PID") "
    stop_agent
  done
done

log "echo hi: $RUNS runs each..."
for side in "${sides[@]}"; do
  agent "$side"
  time_runs "exec_$side" "$RUNS" tb "$side" remote exec "${L[@]}" -- 'echo hi'
  [ "$(cat "$work/exec_$side.out")" = hi ] || die "$side: remote exec printed $(head -c 100 "$work/exec_$side.out")"
  exec_stats[$side]=$(stats "exec_$side")
  stop_agent
done

# median of the numbers in $1
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }'; }
field() { awk -v i="$2" '{ print $i }' <<<"$1"; }
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }
kb_mb() { mb "$(median "$1")"; }

echo "Base \`$base_ref\` ($(cat "$work/base/commit")), head \`${head_ref:-work tree}\` ($(cat "$work/head/commit")$([ -n "$head_ref" ] || git diff --quiet HEAD 2>/dev/null || echo ", with uncommitted changes")); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo
row "" "base" "head"
row "---" "---" "---"
row "release binary (static, stripped)" "$(awk -v b="${size[base]}" 'BEGIN { printf "%.1f MB", b / 1e6 }')" "$(awk -v b="${size[head]}" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
row "idle listening agent RSS, median of $ROUNDS (one call served, ${IDLE_SECS} s idle)" "$(kb_mb "${rss[base]}") MB" "$(kb_mb "${rss[head]}") MB"
row "of which anonymous (heap, stacks)" "$(kb_mb "${anon[base]}") MB" "$(kb_mb "${anon[head]}") MB"
# init_row LABEL BASE HEAD: "packages ms bytes" of each side as one row.
init_row() {
  row "package init, $1: packages / ms / KB allocated (median of $INIT_RUNS)" \
    "$(field "$2" 1) / $(field "$2" 2) / $(($(field "$2" 3) / 1000))" \
    "$(field "$3" 1) / $(field "$3" 2) / $(($(field "$3" 3) / 1000))"
}
init_row "\`tentacle version\`" "${init_version[base]}" "${init_version[head]}"
init_row "script supervisor" "${init_super[base]}" "${init_super[head]}"
row "\`remote exec 'echo hi'\`, listening: p50 / p99 ($RUNS runs)" "$(field "${exec_stats[base]}" 1) / $(field "${exec_stats[base]}" 2) ms" "$(field "${exec_stats[head]}" 1) / $(field "${exec_stats[head]}" 2) ms"
