#!/usr/bin/env bash
# make demo: a throwaway Tentacle on loopback, set up the way cloud-init or
# Ansible would, then a script run on it through the real Halibut protocol,
# first listening, then polling. Everything lives in a temp directory.
set -euo pipefail
bin=$(realpath "${1:-bin/tentacle}")
work=$(mktemp -d)
agent_pid=""
serve_pid=""
cleanup() {
  for pid in $agent_pid $serve_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# Keep the instance index and the operator identity out of /etc and $HOME.
export TentacleMachineConfigurationHomeDirectory="$work/etc"
export TENTACLE_OPERATOR_CERT="$work/operator.pfx"
listen_port=$((20000 + RANDOM % 5000))
poll_port=$((25000 + RANDOM % 5000))
control_port=$((30000 + RANDOM % 5000))

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# The operator (this machine, acting as the Octopus Server) needs an identity.
operator=$("$bin" remote new-certificate 2>/dev/null | awk '/Thumbprint/ {print $2}')

step "$bin" create-instance --instance Demo --config "$work/Demo/tentacle.config"
step "$bin" new-certificate --instance Demo --if-blank
step "$bin" configure --instance Demo --port "$listen_port" --listenIpAddress 127.0.0.1 --trust "$operator"
step "$bin" poll-server --instance Demo --server-comms-address "https://127.0.0.1:$poll_port" --thumbprint "$operator"
tentacle_thumbprint=$("$bin" show-thumbprint --instance Demo)
subscription=$(grep -o 'poll://[a-z2-9]*/' "$work/Demo/tentacle.config" | head -n 1)

# The operator's polling endpoint, standing in for the Octopus Server's port 10943.
printf '\n\033[1m$ %s remote serve --listen 127.0.0.1:%s --control 127.0.0.1:%s --trust %s &\033[0m\n' "$bin" "$poll_port" "$control_port" "$tentacle_thumbprint"
"$bin" remote serve --listen "127.0.0.1:$poll_port" --control "127.0.0.1:$control_port" --trust "$tentacle_thumbprint" >"$work/serve.out" 2>&1 &
serve_pid=$!
sleep 0.2

printf '\n\033[1m$ %s agent --instance Demo &\033[0m\n' "$bin"
"$bin" agent --instance Demo >"$work/agent.out" 2>&1 &
agent_pid=$!
for _ in $(seq 50); do
  grep -q 'msg=listening' "$work/Demo/Logs/OctopusTentacle.txt" 2>/dev/null && break
  sleep 0.1
done
sleep 0.3 # let the polling connection come up

step "$bin" remote exec --endpoint "https://127.0.0.1:$listen_port/" --thumbprint "$tentacle_thumbprint" -- \
  'echo "Hello from $(hostname), listening mode"; echo "TentacleHome=$TentacleHome"; uname -sr; echo "a line on stderr" >&2'

step "$bin" remote exec --poll "$subscription" --via "https://127.0.0.1:$control_port/" --thumbprint "$tentacle_thumbprint" -- \
  'echo "Hello again, this time the Tentacle polled for the work"; for i in 1 2 3; do echo "step $i"; done'

printf '\n\033[1mThe agent'"'"'s log (%s):\033[0m\n' "$work/Demo/Logs/OctopusTentacle.txt"
cat "$work/Demo/Logs/OctopusTentacle.txt"
