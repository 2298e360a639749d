# shellcheck shell=bash disable=SC2154 # $work is the caller's
# Shell helpers shared by scripts/bench.sh, bench-compare.sh and bench-transfer.sh:
# sourced, not run. The caller sets $work (a temp directory the samples go
# to) before timing anything.

# cleanup: stops every process in pids (the caller's array), removes the
# privilege separation directory setup_sshd had to make, build's git
# worktree, and $work. Callers: trap cleanup EXIT.
pids=()          # every background process started, stopped by cleanup
made_privsep=""  # sshd's privilege separation directory, if we had to create it
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$made_privsep" ]; then rmdir "$made_privsep" 2>/dev/null || true; fi
  git worktree remove --force "$work/src" 2>/dev/null || true
  rm -rf "$work"
}

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

# tail_count NAME: how many samples of NAME are over twice its median.
tail_count() {
  sort -n "$work/$1.us" | awk '{ v[NR] = $1 } END { m = v[int((NR * 50 + 99) / 100)]; for (i = 1; i <= NR; i++) if (v[i] > 2 * m) n++; print n + 0 }'
}

# histogram LABEL NAME...: a markdown table of how the samples of each NAME spread,
# in bins of one width (a round figure near a quarter of the first NAME's median) up
# to three times that median, and one bin for the rest. A tail shows as counts far
# right of the median's bin.
histogram() {
  local label=$1
  shift
  local files=() name
  for name in "$@"; do files+=("$work/$name.us"); done
  local m
  m=$(sort -n "$work/$1.us" | awk '{ v[NR] = $1 } END { print v[int((NR * 50 + 99) / 100)] / 1000 }')
  awk -v label="$label" -v names="$*" -v m="$m" '
    FNR == 1 { f++ }
    { v[f, FNR] = $1; n[f] = FNR }
    END {
      split(names, nm, " ")
      split("0.1 0.2 0.5 1 2 5 10 20 50 100 200 500", nice, " ")
      w = nice[12]; for (i = 1; i <= 12; i++) if (nice[i] >= m / 4) { w = nice[i]; break }
      top = int(3 * m / w + 1) * w
      printf "| %s |", label; for (j = 1; j <= f; j++) printf " %s |", nm[j]; printf "\n|---|"
      for (j = 1; j <= f; j++) printf "---|"; printf "\n"
      for (lo = 0; lo < top; lo += w) {
        line = sprintf("| %g–%g ms |", lo, lo + w); any = 0
        for (j = 1; j <= f; j++) { c = 0; for (i = 1; i <= n[j]; i++) { x = v[j, i] / 1000; if (x >= lo && x < lo + w) c++ } any += c; line = line sprintf(" %s |", c ? c : "") }
        if (any) print line
      }
      line = sprintf("| ≥ %g ms |", top)
      for (j = 1; j <= f; j++) { c = 0; for (i = 1; i <= n[j]; i++) if (v[j, i] / 1000 >= top) c++; line = line sprintf(" %s |", c ? c : "") }
      print line
    }' "${files[@]}"
}

# build SIDE REF: the release binary of REF (the work tree when REF is
# empty) in $work/SIDE/tentacle.
build() {
  local side=$1 ref=$2 src=.
  mkdir -p "$work/$side"
  if [ -f "$ref" ] && [ -x "$ref" ]; then # a binary built elsewhere (a variant under study)
    cp "$ref" "$work/$side/tentacle"
    # with its tentacle-supervisor, when it has one beside it
    if [ -x "$(dirname "$ref")/tentacle-supervisor" ]; then cp "$(dirname "$ref")/tentacle-supervisor" "$work/$side/"; fi
    basename "$ref" >"$work/$side/commit"
    return
  fi
  if [ -n "$ref" ]; then
    git worktree add --detach --force "$work/src" "$ref" >/dev/null 2>&1 || die "cannot check out $ref"
    src=$work/src
  fi
  (cd "$src" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$work/$side/tentacle" ./cmd/tentacle)
  # Commits since tentacle-supervisor run their scripts under it when it lies beside the binary.
  if [ -d "$src/cmd/tentacle-supervisor" ]; then
    (cd "$src" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$work/$side/tentacle-supervisor" ./cmd/tentacle-supervisor)
  fi
  if [ -n "$ref" ]; then git worktree remove --force "$work/src"; fi
  git rev-parse --short=12 "${ref:-HEAD}" >"$work/$side/commit"
}

# tb SIDE ARGS...: that side's binary, with its own instance index and
# operator certificate under $work/SIDE (nothing in /etc or $HOME).
tb() {
  local side=$1
  shift
  TentacleMachineConfigurationHomeDirectory="$work/$side/etc" TENTACLE_OPERATOR_CERT="$work/$side/operator.pfx" "$work/$side/tentacle" "$@"
}

# setup_sshd: an sshd on two private loopback ports, with its own keys,
# config and authorized_keys under $work/ssh; sets SSH_OPTS, ssh_port,
# ssh_port_clean and SSHD_PID, or ssh_why (and returns 1) when it cannot. The
# caller keeps pids (stopped on exit) and made_privsep (removed on exit).
ssh_why="" # why the ssh/scp rows are missing, when they are
ssh_user=$(id -un)
setup_sshd() {
  local sshd dir=$work/ssh err
  PATH="$PATH:/usr/sbin:/sbin" command -v sshd >/dev/null || { ssh_why="sshd is not installed (apt-get install openssh-server)"; return 1; }
  sshd=$(PATH="$PATH:/usr/sbin:/sbin" command -v sshd)
  if ! command -v ssh >/dev/null || ! command -v scp >/dev/null; then
    ssh_why="ssh or scp is not installed (apt-get install openssh-client)"
    return 1
  fi
  mkdir -m 0700 "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key"
  cp "$dir/user_key.pub" "$dir/authorized_keys"
  free_port; ssh_port=$REPLY       # the comparison: a session's shell as it is configured
  free_port; ssh_port_clean=$REPLY # the same, with ~/.bashrc not read (see below)
  cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $ssh_port
Port $ssh_port_clean
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
# Debian's bash reads ~/.bashrc for 'ssh host cmd' (it detects sshd) unless it
# thinks it is a nested shell. A heavy ~/.bashrc (pyenv init on the dev box
# costs ~90 ms) is not ssh's cost, so this port measures without it.
Match LocalPort $ssh_port_clean
  SetEnv SHLVL=1
EOF
  # As root, sshd refuses to start without its privilege separation
  # directory (normally made by systemd); create the one it names, and remove
  # it again on exit.
  if ! err=$("$sshd" -t -f "$dir/sshd_config" 2>&1); then
    local privsep
    privsep=$(tr -d '\r' <<<"$err" | sed -n 's/^Missing privilege separation directory: //p')
    if [ -n "$privsep" ] && [ "$(id -u)" = 0 ]; then
      mkdir -m 0755 "$privsep" && made_privsep=$privsep
      err=$("$sshd" -t -f "$dir/sshd_config" 2>&1) || { ssh_why="sshd -t: ${err//$'\r'/}"; return 1; }
    else
      ssh_why="sshd -t: ${err//$'\r'/}"
      return 1
    fi
  fi
  "$sshd" -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
  SSHD_PID=$!
  pids+=("$SSHD_PID")
  wait_port "$ssh_port"
  # -F /dev/null: neither ~/.ssh/config nor /etc/ssh/ssh_config (no
  # ControlMaster or GSSAPI surprises); a throwaway host key, so no known_hosts.
  SSH_OPTS=(-F /dev/null -i "$dir/user_key" -o IdentitiesOnly=yes -o BatchMode=yes
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
  if ! err=$(ssh "${SSH_OPTS[@]}" -p "$ssh_port" "$ssh_user@127.0.0.1" true 2>&1); then
    ssh_why="ssh to the private sshd failed: $err $(tail -n 3 "$dir/sshd.log")"
    return 1
  fi
}
