# shellcheck shell=bash disable=SC2154 # $work is the caller's
# Shell helpers shared by scripts/bench.sh and scripts/bench-compare.sh:
# sourced, not run. The caller sets $work (a temp directory the samples go
# to) before timing anything.

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# free_port: sets REPLY to a loopback port nothing listens on (and not handed
# out before in this run).
used_ports=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000)) # below Linux's ephemeral range (32768-)
    [[ $used_ports == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      used_ports+="$p "
      REPLY=$p
      return
    fi
  done
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "nothing listens on 127.0.0.1:$1 after 10 s"
}

# now_us VAR: microseconds since the epoch. EPOCHREALTIME needs no fork;
# `date +%s%N` would add about a millisecond to every sample.
now_us() { printf -v "$1" '%s' "${EPOCHREALTIME/[.,]/}"; }

# time_runs NAME N CMD...: runs CMD 3 times to warm up (page cache, the
# agent's first script), then N times, one duration in µs per line in $work/NAME.us.
time_runs() {
  local name=$1 n=$2 i
  shift 2
  : >"$work/$name.us"
  for ((i = -3; i < n; i++)); do
    timed "$name" "$@"
    ((i < 0)) || echo "$ELAPSED_US" >>"$work/$name.us"
  done
}

# timed NAME CMD...: runs CMD once, its output in $work/NAME.out and .err, and
# sets ELAPSED_US. Any failure stops the benchmark: a failed run must not
# count as a fast one.
timed() {
  local name=$1 s e
  shift
  now_us s
  if ! "$@" >"$work/$name.out" 2>"$work/$name.err"; then
    log "bench: $name failed: $*"
    cat "$work/$name.err" >&2
    exit 1
  fi
  now_us e
  ELAPSED_US=$((e - s))
}

# stats NAME: "p50 p99 mean" in ms; nearest-rank percentiles (p99 of 100
# samples is the 99th smallest).
stats() {
  sort -n "$work/$1.us" | awk '{ v[NR] = $1; s += $1 }
    END { a = int((NR * 50 + 99) / 100); b = int((NR * 99 + 99) / 100)
          printf "%.1f %.1f %.1f\n", v[a] / 1000, v[b] / 1000, s / NR / 1000 }'
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; } # heap, stacks: not the mapped binary
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# cpu_ns PID: CPU time of all its threads in ns (schedstat: precise, where
# /proc/PID/stat counts 10 ms ticks, too coarse for a 0.1 % budget over 5 s).
cpu_ns() { cat "/proc/$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; } # kB (KiB) -> MB
ms_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
verdict() { if "$@"; then echo "met"; else echo "**missed**"; fi; }
