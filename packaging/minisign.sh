#!/bin/sh
# Signs one file with minisign for goreleaser's signs: step.
# Usage: minisign.sh FILE SIGNATURE
# TENTACLE_SIGNING_KEY names the secret key file; TENTACLE_SIGNING_PASSWORD
# is its password (leave it unset for a key made with `minisign -G -W`).
set -eu
file=$1
signature=$2
key=${TENTACLE_SIGNING_KEY:?set TENTACLE_SIGNING_KEY to a minisign secret key file}
if ! command -v minisign >/dev/null 2>&1; then
	echo "minisign is not installed (apt-get install minisign); cannot sign $file" >&2
	exit 1
fi
if [ ! -r "$key" ]; then
	echo "TENTACLE_SIGNING_KEY=$key is not a readable file" >&2
	exit 1
fi
# minisign reads the password from standard input when it is not a terminal.
printf '%s\n' "${TENTACLE_SIGNING_PASSWORD:-}" |
	minisign -S -s "$key" -m "$file" -x "$signature"
