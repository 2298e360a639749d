#!/usr/bin/env bash
# make demo: set up a throwaway Tentacle instance the way cloud-init or
# Ansible would, in a temp directory, and show what the agent would run with.
set -euo pipefail
bin=$(realpath "${1:-bin/tentacle}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Keep the demo's instance index out of /etc/octopus.
export TentacleMachineConfigurationHomeDirectory="$work/etc"
server_thumbprint=0123456789ABCDEF0123456789ABCDEF01234567

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$bin" create-instance --instance Demo --config "$work/Demo/tentacle.config"
step "$bin" new-certificate --instance Demo --if-blank
step "$bin" configure --instance Demo --port 10933 --trust "$server_thumbprint"
step "$bin" configure --instance Demo --port 10933 --trust "$server_thumbprint"
step "$bin" list-instances
step "$bin" show-thumbprint --instance Demo --format json
echo
step "$bin" show-configuration --instance Demo

cat <<MSG

The agent is not yet available: \`tentacle agent\` (listening on 10933 and running
scripts through the Halibut protocol) arrives with the protocol and agent issues.
Until then this demo shows instance, configuration and certificate management.
MSG
