#!/usr/bin/env bash
# scripts/bench-transfer.sh [BASE [HEAD]] (make bench-transfer): the speed of
# moving packages (issue #20), in one run: `tentacle remote upload/download`
# to a listening agent and to a polling agent through `remote serve`, for
# BASE (a git revision or a prebuilt binary; none: the work tree only) and
# HEAD (default: the work tree), in turns (base, head, base, head...) so that
# other work on the box weighs on both alike; and, in the same rounds, the
# ceilings they run into: TLS 1.3 over loopback (scripts/ceilings), the disk
# with fsync (dd conv=fsync) and scp -c aes128-gcm@openssh.com to a private
# sshd. Besides MB/s it reports CPU seconds per GiB moved of the agent, the
# client (`remote upload/download`) and `remote serve` (polling), from their
# schedstat or their reaped children's /proc/PID/stat ticks: with both ends
# on one small box, CPU per byte is the real cost.
#
# Everything runs on 127.0.0.1 under one temp directory, removed on exit with
# every process started here. Prints a markdown table for docs/benchmarks.md
# (progress on stderr). Knobs (environment): SIZE_MIB (default 1024), ROUNDS
# (default 3), CEILING_MIB (TLS ceiling bytes, default 512).
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."
base_ref=${1:-}
head_ref=${2:-}
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-3}
CEILING_MIB=${CEILING_MIB:-512}
GO=${GO:-go}
size_bytes=$((SIZE_MIB * 1024 * 1024))

work=$(mktemp -d "${TMPDIR:-/tmp}/tentacle-transfer.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"

sides=(head)
if [ -n "$base_ref" ]; then sides=(base head); fi
log "Building ${base_ref:+$base_ref and }${head_ref:-the work tree}..."
[ -z "$base_ref" ] || build base "$base_ref"
build head "$head_ref"
(cd scripts/ceilings && GOFLAGS='' "$GO" build -o "$work/ceilings" .) || die "cannot build the ceilings program"

# --- per side: a listening agent, a polling agent and its remote serve -------

declare -A L P listen_pid poll_pid serve_pid
start_side() {
  local side=$1 operator lport pport cport ltp ptp sub
  free_port; lport=$REPLY
  free_port; pport=$REPLY
  free_port; cport=$REPLY
  operator=$(tb "$side" remote new-certificate 2>/dev/null | awk '/Thumbprint/ { print $2 }')
  [ -n "$operator" ] || die "$side: remote new-certificate printed no thumbprint"
  tb "$side" create-instance --instance XferListen --config "$work/$side/listen/tentacle.config" >/dev/null
  tb "$side" new-certificate --instance XferListen --if-blank >/dev/null
  tb "$side" configure --instance XferListen --port "$lport" --listenIpAddress 127.0.0.1 --trust "$operator" >/dev/null
  tb "$side" create-instance --instance XferPoll --config "$work/$side/poll/tentacle.config" >/dev/null
  tb "$side" new-certificate --instance XferPoll --if-blank >/dev/null
  tb "$side" configure --instance XferPoll --noListen True >/dev/null
  tb "$side" poll-server --instance XferPoll --server-comms-address "https://127.0.0.1:$pport" --thumbprint "$operator" >/dev/null
  ltp=$(tb "$side" show-thumbprint --instance XferListen)
  ptp=$(tb "$side" show-thumbprint --instance XferPoll)
  sub=$(grep -o 'poll://[a-z2-9]*/' "$work/$side/poll/tentacle.config" | head -n 1)
  [ -n "$sub" ] || die "$side: no polling subscription in its config"
  # Not through tb: $! must be the process itself, not a subshell running it.
  local env=(env "TentacleMachineConfigurationHomeDirectory=$work/$side/etc" "TENTACLE_OPERATOR_CERT=$work/$side/operator.pfx")
  "${env[@]}" "$work/$side/tentacle" remote serve --listen "127.0.0.1:$pport" --control "127.0.0.1:$cport" --trust "$ptp" >"$work/$side/serve.log" 2>&1 &
  serve_pid[$side]=$!
  pids+=("$!")
  "${env[@]}" "$work/$side/tentacle" agent --instance XferListen >"$work/$side/agent-listen.log" 2>&1 &
  listen_pid[$side]=$!
  pids+=("$!")
  "${env[@]}" "$work/$side/tentacle" agent --instance XferPoll >"$work/$side/agent-poll.log" 2>&1 &
  poll_pid[$side]=$!
  pids+=("$!")
  wait_port "$cport"
  wait_port "$lport"
  L[$side]="--endpoint https://127.0.0.1:$lport/ --thumbprint $ltp"
  P[$side]="--poll $sub --via https://127.0.0.1:$cport/ --thumbprint $ptp"
  # shellcheck disable=SC2086 # the arguments are words without spaces
  "${env[@]}" timeout 30 "$work/$side/tentacle" remote capabilities ${P[$side]} >/dev/null || die "$side: the polling agent did not connect within 30 s"
  # shellcheck disable=SC2086
  tb "$side" remote capabilities ${L[$side]} >/dev/null
}
for side in "${sides[@]}"; do start_side "$side"; done

log "Starting sshd on loopback..."
setup_sshd || log "bench-transfer: no scp comparison: $ssh_why"
have_ssh() { [ -z "$ssh_why" ]; }

# --- measuring one transfer ------------------------------------------------------

head -c "$size_bytes" /dev/urandom >"$work/src.bin"
recv=$work/recv.bin
back=$work/back.bin
same_up() { cmp -s "$work/src.bin" "$recv"; }
same_down() { cmp -s "$work/src.bin" "$back" && rm -f "$back"; }

# reaped_ticks PID: CPU ticks (10 ms) of the children PID has waited for.
# The client runs as this shell's child: $me, taken here (in a command
# substitution $BASHPID would be the subshell's).
me=$BASHPID
reaped_ticks() { awk '{ print $16 + $17 }' "/proc/$1/stat"; }
# sample NAME CHECK SERVER_PID [SERVE_PID] -- CMD...: one transfer of
# $size_bytes; appends "MB/s server_s client_s serve_s" (CPU seconds per GiB)
# to $work/NAME.samples. SERVER_PID is the agent (or sshd, whose sessions it
# reaps: measured from its children); SERVE_PID is remote serve, or -.
sample() {
  local name=$1 check=$2 server=$3 serve=$4 s0 c0 v0 s1 c1 v1 sshd=0
  shift 5
  [ "$server" != "$SSHD_PID" ] || sshd=1
  sync
  if ((sshd)); then s0=$(reaped_ticks "$server")0000000; else s0=$(cpu_ns "$server"); fi
  c0=$(reaped_ticks "$me")
  v0=0
  [ "$serve" = - ] || v0=$(cpu_ns "$serve")
  timed "$name" "$@"
  c1=$(reaped_ticks "$me") # before the check below, whose cmp is this shell's child too
  v1=0
  [ "$serve" = - ] || v1=$(cpu_ns "$serve")
  if ((sshd)); then
    sleep 0.2 # the session process is reaped just after the client exits
    s1=$(reaped_ticks "$server")0000000
  else
    s1=$(cpu_ns "$server")
  fi
  $check || die "$name: the transferred file differs from the original"
  awk -v b="$size_bytes" -v us="$ELAPSED_US" -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v v=$((v1 - v0)) \
    'BEGIN { g = b / 1073741824; printf "%.0f %.2f %.2f %.2f\n", b / us, s / 1e9 / g, c / 100 / g, v / 1e9 / g }' >>"$work/$name.samples"
}

# --- the rounds ----------------------------------------------------------------------

log "Transfers: ${SIZE_MIB} MiB, $ROUNDS rounds of every row, in turns..."
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round of $ROUNDS"
  for side in "${sides[@]}"; do
    # shellcheck disable=SC2206
    l=(${L[$side]}) p=(${P[$side]})
    sample "up_listen_$side" same_up "${listen_pid[$side]}" - -- tb "$side" remote upload "${l[@]}" "$work/src.bin" "$recv"
    sample "down_listen_$side" same_down "${listen_pid[$side]}" - -- tb "$side" remote download "${l[@]}" "$recv" "$back"
    rm -f "$recv"
    sample "up_poll_$side" same_up "${poll_pid[$side]}" "${serve_pid[$side]}" -- tb "$side" remote upload "${p[@]}" "$work/src.bin" "$recv"
    sample "down_poll_$side" same_down "${poll_pid[$side]}" "${serve_pid[$side]}" -- tb "$side" remote download "${p[@]}" "$recv" "$back"
    rm -f "$recv"
  done
  if have_ssh; then
    sample up_scp same_up "$SSHD_PID" - -- scp -q -c aes128-gcm@openssh.com "${SSH_OPTS[@]}" -P "$ssh_port_clean" "$work/src.bin" "$ssh_user@127.0.0.1:$recv"
    sample down_scp same_down "$SSHD_PID" - -- scp -q -c aes128-gcm@openssh.com "${SSH_OPTS[@]}" -P "$ssh_port_clean" "$ssh_user@127.0.0.1:$recv" "$back"
    rm -f "$recv"
  fi
  sync
  now_us s
  dd if=/dev/zero of="$work/dd.bin" bs=1M count="$SIZE_MIB" conv=fsync status=none
  now_us e
  awk -v b="$size_bytes" -v us=$((e - s)) 'BEGIN { printf "%.0f\n", b / us }' >>"$work/disk.samples"
  rm -f "$work/dd.bin"
  "$work/ceilings" $((CEILING_MIB * 1024 * 1024)) bulk | awk '$1 == "tls_mbps" { print $2 }' >>"$work/tls.samples"
done

# --- report --------------------------------------------------------------------------

# col NAME FIELD: "median (low–high)" of one field of NAME's samples.
col() {
  awk -v f="$2" '{ print $f }' "$work/$1.samples" | sort -g |
    awk '{ r[NR] = $1 } END { m = r[int((NR + 1) / 2)]; print (NR == 1 ? m : m " (" r[1] "–" r[NR] ")") }'
}
med() { col "$1" "${2:-1}" | awk '{ print $1 }'; }
tls=$(med tls)
disk=$(med disk)
floor=$(awk -v a="$tls" -v b="$disk" 'BEGIN { m = a < b ? a : b; printf "%.0f", 0.7 * m }')
label() { if [ "$1" = head ]; then echo "${head_ref:-work tree}"; else echo "$base_ref"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $SIZE_MIB MiB of random bytes per transfer, $ROUNDS rounds, rows in turns; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end. Median (low–high); MB/s is 10^6 B/s; whole process (start, handshake, transfer; \`remote download\` fsyncs what it wrote, the agent and scp do not). CPU: seconds per GiB moved."
echo
for side in "${sides[@]}"; do echo "- $side: \`$(label "$side")\` ($(cat "$work/$side/commit"))"; done
echo
echo "| row | MB/s | agent CPU s/GiB | client CPU s/GiB | remote serve CPU s/GiB |"
echo "| --- | --- | --- | --- | --- |"
for side in "${sides[@]}"; do
  for row in up_listen down_listen up_poll down_poll; do
    serve_col="-"
    [[ $row != *poll ]] || serve_col=$(col "${row}_$side" 4)
    echo "| $side: $row | **$(col "${row}_$side" 1)** | $(col "${row}_$side" 2) | $(col "${row}_$side" 3) | $serve_col |"
  done
done
if have_ssh; then
  echo "| scp -c aes128-gcm: upload | $(col up_scp 1) | $(col up_scp 2) (sshd session) | $(col up_scp 3) | |"
  echo "| scp -c aes128-gcm: download | $(col down_scp 1) | $(col down_scp 2) (sshd session) | $(col down_scp 3) | |"
fi
echo "| ceiling: TLS 1.3 AES-128-GCM over loopback, one Go process, 64 KiB writes, best of 3 | $(col tls 1) | | | |"
echo "| ceiling: disk, dd bs=1M conv=fsync | $(col disk 1) | | | |"
echo
echo "Targets (head, medians): ≥ 70 % of min(TLS, disk) = $floor MB/s; ≥ 1.5× scp aes128-gcm; polling ≥ 80 % of listening."
echo
echo "| head | upload | download |"
echo "| --- | --- | --- |"
ul=$(med up_listen_head) dl=$(med down_listen_head) up=$(med up_poll_head) dp=$(med down_poll_head)
echo "| listening / 70 % of min(TLS, disk) | $(ratio "$ul" "$floor") | $(ratio "$dl" "$floor") |"
if have_ssh; then
  echo "| listening / scp aes128-gcm (target ≥ 1.5) | $(ratio "$ul" "$(med up_scp)") | $(ratio "$dl" "$(med down_scp)") |"
fi
echo "| polling / listening (target ≥ 0.8) | $(ratio "$up" "$ul") | $(ratio "$dp" "$dl") |"
