#!/usr/bin/env bash
# make bench, whole-process half: times the real `tentacle` binary end to end
# (process start, mTLS handshake, the Halibut calls, the agent running bash)
# against ssh/scp on the same box, and measures the ceilings they run into.
# Everything is on loopback (127.0.0.1) and under one temp directory; every
# process started here is stopped on exit. Prints a markdown table on stdout
# (progress goes to stderr) for docs/benchmarks.md.
#
# Knobs (environment): RUNS (latency samples per row, default 200),
# SIZE_MIB (transfer size, default 1024), XFER_RUNS (runs per transfer row,
# default 5), IDLE_SECS (idle time before reading RSS, default 5),
# QUIET_WAIT (how long to wait for other work on the box to stop, default 60).
# Takes about four minutes on a quiet 2-vCPU machine.
set -euo pipefail
export LC_ALL=C # '.' as the decimal point in EPOCHREALTIME and awk

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-200}
SIZE_MIB=${SIZE_MIB:-1024}
XFER_RUNS=${XFER_RUNS:-5}
IDLE_SECS=${IDLE_SECS:-5}
GO=${GO:-go}
size_bytes=$((SIZE_MIB * 1024 * 1024))

work=$(mktemp -d "${TMPDIR:-/tmp}/tentacle-bench.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
trap cleanup EXIT
trap 'exit 130' INT TERM # run cleanup on Ctrl+C too


# The agents, remote serve and scp spool to temp files; keep them in $work so
# an interrupted run leaves nothing behind.
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
# Keep the instance index and the operator identity out of /etc and $HOME (as make demo).
export TentacleMachineConfigurationHomeDirectory="$work/etc"
export TENTACLE_OPERATOR_CERT="$work/operator.pfx"

# busy_pct: how busy the CPUs are over the next second, from /proc/stat.
busy_pct() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
    busy = y[1] - x[1]; idle = y[2] - x[2]; printf "%.0f\n", 100 * busy / (busy + idle + (busy + idle == 0)) }'
}
# Builds and tests share a small box; other work moves every figure below.
# Wait up to QUIET_WAIT seconds (default 60) for the CPUs to stay under 15 %
# busy for 3 s in a row, then go on regardless and say so in the report.
QUIET_WAIT=${QUIET_WAIT:-60}
quiet=0
for ((waited = 0; quiet < 3 && waited < QUIET_WAIT; waited++)); do
  busy=$(busy_pct)
  if ((busy <= 15)); then
    quiet=$((quiet + 1))
  else
    quiet=0
    ((waited % 10 == 0)) && log "bench: CPUs ${busy}% busy with other work; waiting for quiet (QUIET_WAIT=$QUIET_WAIT s)..."
  fi
done
((busy <= 15)) || log "bench: warning: CPUs ${busy}% busy before starting; figures will be noisy."
# box_ticks: "busy total" CPU ticks of the whole box since boot.
box_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
# tree_ticks PID...: CPU ticks of these processes and of their children they
# have waited for (utime stime cutime cstime).
tree_ticks() {
  local pid t=0
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    t=$((t + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat")))
  done
  echo "$t"
}
read -r box_busy0 box_total0 < <(box_ticks)
own0=$(tree_ticks $$)

# --- helpers -------------------------------------------------------------------

# expect_hi NAME: the last run really printed "hi" (and nothing else on stdout).
expect_hi() {
  [ "$(cat "$work/$1.out")" = hi ] || die "$1 printed $(head -c 200 "$work/$1.out" | od -c | head -3), not hi"
}

# xfer_runs NAME CHECK CMD...: runs CMD (one transfer of $size_bytes) XFER_RUNS
# times; after each, CHECK (a command) must succeed (the copy is identical).
# The dirty page cache is flushed before each run so that one run's writeback
# does not land in the next one's time. Prints "median (low–high)" MB/s
# (10^6 B/s): on a shared VM one run in five can be half as fast as the rest.
xfer_runs() {
  local name=$1 check=$2 i rates=()
  shift 2
  for ((i = 0; i < XFER_RUNS; i++)); do
    sync
    timed "$name" "$@"
    $check || die "$name: the transferred file differs from the original"
    # bytes per µs is MB/s.
    rates+=("$(awk -v b="$size_bytes" -v us="$ELAPSED_US" 'BEGIN { printf "%.0f", b / us }')")
  done
  printf '%s\n' "${rates[@]}" | sort -n | awk '{ r[NR] = $1 } END { m = r[int((NR + 1) / 2)]; print (NR == 1 ? m : m " (" r[1] "–" r[NR] ")") }'
}


# --- build ---------------------------------------------------------------------

# Build from the working tree into $work: other engineers edit the code while
# this runs, and bin/ may hold something older. Built as .goreleaser.yaml
# builds releases (static, stripped): cgo alone adds ~1.5 MB of RSS (libc).
log "Building tentacle..."
bin="$work/tentacle"
CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$bin" ./cmd/tentacle
# Beside the binary, as every package has it: the agents run their scripts under it.
CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$work/tentacle-supervisor" ./cmd/tentacle-supervisor
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
# Most of an idle Go process's RSS is its own code and read-only data.
bin_bytes=$(stat -c %s "$bin")

# --- a listening and a polling agent, and the operator's polling endpoint ------

free_port; listen_port=$REPLY
free_port; poll_port=$REPLY
free_port; control_port=$REPLY
free_port; nagle_poll_port=$REPLY
free_port; nagle_control_port=$REPLY
operator=$("$bin" remote new-certificate 2>/dev/null | awk '/Thumbprint/ { print $2 }')
[ -n "$operator" ] || die "remote new-certificate printed no thumbprint"

# Two instances, so that each agent does one job and its RSS is that job's.
"$bin" create-instance --instance BenchListen --config "$work/listen/tentacle.config" >/dev/null
"$bin" new-certificate --instance BenchListen --if-blank >/dev/null
"$bin" configure --instance BenchListen --port "$listen_port" --listenIpAddress 127.0.0.1 --trust "$operator" >/dev/null
"$bin" create-instance --instance BenchPoll --config "$work/poll/tentacle.config" >/dev/null
"$bin" new-certificate --instance BenchPoll --if-blank >/dev/null
"$bin" configure --instance BenchPoll --noListen True >/dev/null
"$bin" poll-server --instance BenchPoll --server-comms-address "https://127.0.0.1:$poll_port" --thumbprint "$operator" >/dev/null
# A second polling agent, for a polling endpoint that leaves Nagle on as an
# Octopus Server does (remote serve --nagle).
"$bin" create-instance --instance BenchPollNagle --config "$work/poll-nagle/tentacle.config" >/dev/null
"$bin" new-certificate --instance BenchPollNagle --if-blank >/dev/null
"$bin" configure --instance BenchPollNagle --noListen True >/dev/null
"$bin" poll-server --instance BenchPollNagle --server-comms-address "https://127.0.0.1:$nagle_poll_port" --thumbprint "$operator" >/dev/null
listen_tp=$("$bin" show-thumbprint --instance BenchListen)
poll_tp=$("$bin" show-thumbprint --instance BenchPoll)
subscription=$(grep -o 'poll://[a-z2-9]*/' "$work/poll/tentacle.config" | head -n 1)
[ -n "$subscription" ] || die "no polling subscription in $work/poll/tentacle.config"
nagle_tp=$("$bin" show-thumbprint --instance BenchPollNagle)
nagle_subscription=$(grep -o 'poll://[a-z2-9]*/' "$work/poll-nagle/tentacle.config" | head -n 1)
[ -n "$nagle_subscription" ] || die "no polling subscription in $work/poll-nagle/tentacle.config"

"$bin" remote serve --listen "127.0.0.1:$poll_port" --control "127.0.0.1:$control_port" --trust "$poll_tp" >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
wait_port "$control_port"
"$bin" remote serve --nagle --listen "127.0.0.1:$nagle_poll_port" --control "127.0.0.1:$nagle_control_port" --trust "$nagle_tp" >"$work/serve-nagle.log" 2>&1 &
pids+=($!)
wait_port "$nagle_control_port"
"$bin" agent --instance BenchListen >"$work/agent-listen.log" 2>&1 &
listen_pid=$!
pids+=("$listen_pid")
"$bin" agent --instance BenchPoll >"$work/agent-poll.log" 2>&1 &
poll_pid=$!
pids+=("$poll_pid")
"$bin" agent --instance BenchPollNagle >"$work/agent-poll-nagle.log" 2>&1 &
pids+=($!)
wait_port "$listen_port"

L=(--endpoint "https://127.0.0.1:$listen_port/" --thumbprint "$listen_tp")
P=(--poll "$subscription" --via "https://127.0.0.1:$control_port/" --thumbprint "$poll_tp")
# A request through remote serve waits in its queue until the agent has
# connected, so one call both waits for the polling agent and proves it works.
timeout 30 "$bin" remote capabilities "${P[@]}" >/dev/null || die "the polling agent did not connect within 30 s (see $work/agent-poll.log)"
"$bin" remote capabilities "${L[@]}" >/dev/null
PN=(--poll "$nagle_subscription" --via "https://127.0.0.1:$nagle_control_port/" --thumbprint "$nagle_tp")
timeout 30 "$bin" remote capabilities "${PN[@]}" >/dev/null || die "the second polling agent did not connect within 30 s (see $work/agent-poll-nagle.log)"

# --- idle footprint (before anything else has run in them) ---------------------

log "Idle footprint: ${IDLE_SECS} s..."
l0=$(cpu_ns "$listen_pid")
p0=$(cpu_ns "$poll_pid")
sleep "$IDLE_SECS"
idle_listen_rss=$(rss_kb "$listen_pid")
idle_poll_rss=$(rss_kb "$poll_pid")
idle_serve_rss=$(rss_kb "$serve_pid")
idle_listen_anon=$(anon_kb "$listen_pid")
idle_poll_anon=$(anon_kb "$poll_pid")
idle_serve_anon=$(anon_kb "$serve_pid")
idle_listen_cpu=$(($(cpu_ns "$listen_pid") - l0))
idle_poll_cpu=$(($(cpu_ns "$poll_pid") - p0))

# --- sshd on a private port, with its own keys, config and authorized_keys -----

log "Starting sshd on loopback..."
if ! setup_sshd; then
  log "bench: skipping the ssh/scp comparison: $ssh_why"
fi
have_ssh() { [ -z "$ssh_why" ]; }

# --- echo hi round trips -------------------------------------------------------

log "echo hi: $RUNS runs each..."
time_runs exec_listen "$RUNS" "$bin" remote exec "${L[@]}" -- 'echo hi'
expect_hi exec_listen
time_runs exec_poll "$RUNS" "$bin" remote exec "${P[@]}" -- 'echo hi'
expect_hi exec_poll
time_runs exec_poll_nagle "$RUNS" "$bin" remote exec "${PN[@]}" -- 'echo hi'
expect_hi exec_poll_nagle
# Where the time goes: a bare process start, and start + mTLS handshake + one RPC.
time_runs version "$RUNS" "$bin" version
time_runs caps_listen "$RUNS" "$bin" remote capabilities "${L[@]}"
time_runs caps_poll "$RUNS" "$bin" remote capabilities "${P[@]}"
if have_ssh; then
  time_runs ssh_clean "$RUNS" ssh "${SSH_OPTS[@]}" -p "$ssh_port_clean" "$ssh_user@127.0.0.1" 'echo hi'
  expect_hi ssh_clean
  # Context only, and slow: fewer runs.
  stock_runs=$((RUNS / 5 > 10 ? RUNS / 5 : 10))
  time_runs ssh_stock "$stock_runs" ssh "${SSH_OPTS[@]}" -p "$ssh_port" "$ssh_user@127.0.0.1" 'echo hi'
  expect_hi ssh_stock
fi

# --- 1 GiB each way ------------------------------------------------------------

log "Transfers: ${SIZE_MIB} MiB, $XFER_RUNS runs each..."
# Random bytes: nothing on the path may get a free ride from compression.
head -c "$size_bytes" /dev/urandom >"$work/src.bin"
recv=$work/recv.bin # where uploads land (absolute, so no instance home rules apply)
back=$work/back.bin # where downloads land
same_up() { cmp -s "$work/src.bin" "$recv"; }
same_down() { cmp -s "$work/src.bin" "$back" && rm -f "$back"; }

up_listen=$(xfer_runs up_listen same_up "$bin" remote upload "${L[@]}" "$work/src.bin" "$recv")
down_listen=$(xfer_runs down_listen same_down "$bin" remote download "${L[@]}" "$recv" "$back")
rm -f "$recv"
up_poll=$(xfer_runs up_poll same_up "$bin" remote upload "${P[@]}" "$work/src.bin" "$recv")
down_poll=$(xfer_runs down_poll same_down "$bin" remote download "${P[@]}" "$recv" "$back")
rm -f "$recv"
if have_ssh; then
  # scp's default cipher (chacha20-poly1305), and AES-GCM, which like TLS
  # uses AES-NI: the fair cipher to compare with.
  remote_recv="$ssh_user@127.0.0.1:$recv"
  up_scp=$(xfer_runs up_scp same_up scp -q "${SSH_OPTS[@]}" -P "$ssh_port_clean" "$work/src.bin" "$remote_recv")
  down_scp=$(xfer_runs down_scp same_down scp -q "${SSH_OPTS[@]}" -P "$ssh_port_clean" "$remote_recv" "$back")
  rm -f "$recv"
  up_scp_gcm=$(xfer_runs up_scp_gcm same_up scp -q -c aes128-gcm@openssh.com "${SSH_OPTS[@]}" -P "$ssh_port_clean" "$work/src.bin" "$remote_recv")
  down_scp_gcm=$(xfer_runs down_scp_gcm same_down scp -q -c aes128-gcm@openssh.com "${SSH_OPTS[@]}" -P "$ssh_port_clean" "$remote_recv" "$back")
  rm -f "$recv"
fi

# The agents again, idle after all of the above: memory must come back down.
log "Idle footprint after the runs: ${IDLE_SECS} s..."
sleep "$IDLE_SECS"
after_listen_rss=$(rss_kb "$listen_pid")
after_poll_rss=$(rss_kb "$poll_pid")
after_serve_rss=$(rss_kb "$serve_pid")
peak_listen=$(hwm_kb "$listen_pid")
peak_poll=$(hwm_kb "$poll_pid")
peak_serve=$(hwm_kb "$serve_pid")

# --- raw ceilings ----------------------------------------------------------------

log "Raw ceilings..."
time_runs sh_true 500 /bin/sh -c true
# The disk the transfers write to: `tentacle remote download` fsyncs the file
# it writes; the agent (for uploads) and scp do not.
sync
now_us s
dd if=/dev/zero of="$work/dd.bin" bs=1M count="$SIZE_MIB" conv=fsync status=none
now_us e
disk_mbps=$(awk -v b="$size_bytes" -v us=$((e - s)) 'BEGIN { printf "%.0f", b / us }')
rm -f "$work/dd.bin"
# TLS and TCP over loopback, mTLS handshakes and spawning from Go, with no
# Tentacle code: scripts/ceilings, a module of its own.
(cd scripts/ceilings && GOFLAGS='' "$GO" build -o "$work/ceilings" .) || die "cannot build the ceilings program"
ceil_size=$((size_bytes < 536870912 ? size_bytes : 536870912)) # 512 MiB is plenty for a steady rate
"$work/ceilings" "$ceil_size" >"$work/ceilings.txt" || die "the ceilings program failed"
ceil() { awk -v k="$1" -v f="$2" '$1 == k { print $f }' "$work/ceilings.txt"; }

# --- report ----------------------------------------------------------------------

# How much of the box other work took while this ran: everything busy minus
# this script and what it started (an upper bound: kernel writeback of our
# files counts as other work).
read -r box_busy1 box_total1 < <(box_ticks)
own=$(($(tree_ticks $$ "${pids[@]}") - own0))
other_pct=$(awk -v b=$((box_busy1 - box_busy0)) -v t=$((box_total1 - box_total0)) -v o="$own" \
  'BEGIN { v = t > 0 ? 100 * (b - o) / t : 0; printf "%.0f", v < 0 ? 0 : v }')

read -r el50 el99 elmean < <(stats exec_listen)
read -r ep50 ep99 epmean < <(stats exec_poll)
read -r en50 en99 enmean < <(stats exec_poll_nagle)
read -r v50 v99 vmean < <(stats version)
read -r cl50 cl99 clmean < <(stats caps_listen)
read -r cp50 cp99 cpmean < <(stats caps_poll)
read -r sh50 sh99 _ < <(stats sh_true)
if have_ssh; then
  read -r sc50 sc99 scmean < <(stats ssh_clean)
  read -r ss50 ss99 ssmean < <(stats ssh_stock)
fi
read -r hs50 hs99 < <(echo "$(ceil handshake_ms 2) $(ceil handshake_ms 3)")
read -r ge50 ge99 < <(echo "$(ceil goexec_ms 2) $(ceil goexec_ms 3)")
median() { echo "${1%% *}"; } # of a "median (low–high)"
ge_mbps() { awk -v a="$(median "$1")" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
cpu_pct() { awk -v ns="$1" -v s="$IDLE_SECS" 'BEGIN { printf "%.3f", ns / (s * 1e9) * 100 }'; }

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
# shellcheck source=/dev/null
os_name=$( (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}") || true)

cat <<EOF

**Machine:** $(nproc) vCPU ${cpu_model:-unknown CPU}, ${mem_gib} GiB, ${os_name:-unknown OS}, kernel $(uname -r),
$("$GO" version | awk '{ print $3, $4 }'). Both ends on the same box over 127.0.0.1. Measured $(date -u +%F)
at \`$commit\`. Other work on the box: ${busy}% of the CPUs just before the run, at most
${other_pct}% of them during it.

Latency: $RUNS runs each after 3 warm-up runs, each a new process and a new connection;
nearest-rank percentiles.

| \`echo hi\`, whole process | p50 | p99 | mean | target | |
| --- | --- | --- | --- | --- | --- |
| \`tentacle remote exec\`, listening agent | **$el50 ms** | $el99 ms | $elmean ms | p50 ≤ 20 ms | $(verdict ms_le "$el50" 20) |
| \`tentacle remote exec --poll --via\`, polling agent through \`remote serve\` | **$ep50 ms** | $ep99 ms | $epmean ms | p50 ≤ 50 ms | $(verdict ms_le "$ep50" 50) |
| same, \`remote serve --nagle\` (Nagle on, as Octopus Server) | **$en50 ms** | $en99 ms | $enmean ms | | |
| tail, listening: p99 against 2 × p50 ($(tail_count exec_listen) of $RUNS runs over 2 × p50) | | $el99 ms | | p99 ≤ $(awk -v a="$el50" 'BEGIN { print 2 * a }') ms | $(verdict ms_le "$el99" "$(awk -v a="$el50" 'BEGIN { print 2 * a }')") |
| tail, polling: p99 against 2 × p50 ($(tail_count exec_poll) of $RUNS runs over 2 × p50) | | $ep99 ms | | p99 ≤ $(awk -v a="$ep50" 'BEGIN { print 2 * a }') ms | $(verdict ms_le "$ep99" "$(awk -v a="$ep50" 'BEGIN { print 2 * a }')") |
EOF
if have_ssh; then
  cat <<EOF
| \`ssh 127.0.0.1 'echo hi'\` (new connection, ed25519; \`~/.bashrc\` not read) | **$sc50 ms** | $sc99 ms | $scmean ms | tentacle faster | $(verdict ms_le "$el50" "$sc50") (listening), $(verdict ms_le "$ep50" "$sc50") (polling) |
| same, the login shell reading this machine's \`~/.bashrc\` ($stock_runs runs) | $ss50 ms | $ss99 ms | $ssmean ms | | |
EOF
else
  echo "| ssh | skipped: $ssh_why | | | | |"
fi
cat <<EOF
| where the time goes: \`tentacle version\` (process start only) | $v50 ms | $v99 ms | $vmean ms | | |
| \`tentacle remote capabilities\`, listening (start + mTLS handshake + one RPC) | $cl50 ms | $cl99 ms | $clmean ms | | |
| \`tentacle remote capabilities\`, polling via \`remote serve\` | $cp50 ms | $cp99 ms | $cpmean ms | | |

How the \`echo hi\` runs spread (runs per bin; a tail shows as counts far right of the median's bin):

$(histogram "\`echo hi\`" exec_listen exec_poll exec_poll_nagle | sed '1s/exec_listen/listening/; 1s/exec_poll_nagle/polling, --nagle/; 1s/exec_poll/polling/')

Transfers: one ${SIZE_MIB} MiB file of random bytes, $XFER_RUNS runs each, median (low–high), whole process
(start, handshake, transfer; \`remote download\` also fsyncs what it wrote, scp does not); MB/s is
10^6 bytes/s. Every copy is compared with the original.

| ${SIZE_MIB} MiB | upload | download | target | |
| --- | --- | --- | --- | --- |
| \`tentacle remote upload/download\`, listening | **$up_listen MB/s** | **$down_listen MB/s** | upload ≥ 400 MB/s (median) | $(verdict ge_mbps "$up_listen" 400) |
| \`tentacle remote upload/download --poll --via\`, polling | **$up_poll MB/s** | **$down_poll MB/s** | | |
EOF
if have_ssh; then
  cat <<EOF
| \`scp\` (default cipher, chacha20-poly1305) | $up_scp MB/s | $down_scp MB/s | | |
| \`scp -c aes128-gcm@openssh.com\` | $up_scp_gcm MB/s | $down_scp_gcm MB/s | | |
EOF
else
  echo "| scp | skipped: $ssh_why | | | |"
fi
cat <<EOF

| agent footprint | listening | polling | \`remote serve\` | target | |
| --- | --- | --- | --- | --- | --- |
| binary (static, stripped, as released) | $(awk -v b="$bin_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB | | | ≤ 25 MB | $(verdict test "$bin_bytes" -le 25000000) |
| RSS after ${IDLE_SECS} s idle, fresh (one call served) | **$(mb "$idle_listen_rss") MB** | **$(mb "$idle_poll_rss") MB** | $(mb "$idle_serve_rss") MB | ≤ 15 MB | $(verdict test $((idle_listen_rss > idle_poll_rss ? idle_listen_rss : idle_poll_rss)) -le 14648) |
| of which anonymous (heap, stacks; the rest is the binary's own pages, shared and clean) | $(mb "$idle_listen_anon") MB | $(mb "$idle_poll_anon") MB | $(mb "$idle_serve_anon") MB | | |
| CPU while idle (${IDLE_SECS} s, all threads) | $(cpu_pct "$idle_listen_cpu") % | $(cpu_pct "$idle_poll_cpu") % | | ≤ 0.1 % of a core | $(verdict test $((idle_listen_cpu > idle_poll_cpu ? idle_listen_cpu : idle_poll_cpu)) -le $((IDLE_SECS * 1000000))) |
| RSS after ${IDLE_SECS} s idle, after all the runs above | $(mb "$after_listen_rss") MB | $(mb "$after_poll_rss") MB | $(mb "$after_serve_rss") MB | | |
| peak RSS (VmHWM) over the whole run | $(mb "$peak_listen") MB | $(mb "$peak_poll") MB | $(mb "$peak_serve") MB | | |

| raw ceiling (no Tentacle code) | result |
| --- | --- |
| \`/bin/sh -c true\` from a bash loop, per exec | p50 $sh50 ms, p99 $sh99 ms |
| \`/bin/sh -c true\` from Go \`os/exec\`, per exec | p50 $ge50 ms, p99 $ge99 ms |
| full mutual TLS 1.3 handshake, RSA-2048 both ends, new TCP connection | p50 $hs50 ms, p99 $hs99 ms |
| TLS 1.3 (AES-128-GCM) over loopback, one connection, 64 KiB writes, best of 3 | $(ceil tls_mbps 2) MB/s |
| plain TCP over loopback, same | $(ceil tcp_mbps 2) MB/s |
| write ${SIZE_MIB} MiB to the temp directory's disk and fsync (\`dd conv=fsync\`) | $disk_mbps MB/s |
EOF
