#!/bin/sh
# Builds the Windows installer, tentacle_<version>_windows_amd64.msi, from the
# windows/amd64 Tentacle.exe and tentacle-supervisor.exe with wixl (Debian's
# wixl package) and packaging/windows/tentacle.wxs. goreleaser OSS has no
# msi: section (Pro only), so the archive build (Tentacle.exe) and the
# supervisor build (tentacle-supervisor.exe) both run this as their
# post-hook; for every other target it does nothing. goreleaser builds them
# in parallel, so each run records its binary (signed, when signing) under a
# lock in OUTDIR/.msi-parts, and the run that finds both builds the MSI.
#
# Usage: msi.sh OS ARCH BINARY VERSION [OUTDIR]
#   BINARY is .../Tentacle.exe or .../tentacle-supervisor.exe. OUTDIR
#   defaults to goreleaser's dist folder (the parent of the build's
#   <id>_windows_amd64* folder), where checksum.extra_files finds the MSI.
#
# Code signing: when TENTACLE_CODESIGN_PFX names a PKCS#12 file (certificate
# and private key; its password in TENTACLE_CODESIGN_PASSWORD, if any),
# each binary is signed before it goes into the MSI (so the zip archive,
# made after the hooks, holds the signed binaries too), then the MSI itself,
# with osslsigncode (SHA-256). TENTACLE_CODESIGN_TIMESTAMP_URL adds an
# RFC 3161 timestamp from that server. Without the PFX nothing is signed.
set -eu
os=$1
arch=$2
binary=$3
version=$4
[ "$os/$arch" = windows/amd64 ] || exit 0
here=$(cd "$(dirname "$0")" && pwd)
case $(basename "$binary") in
Tentacle.exe) part=agent ;;
tentacle-supervisor.exe) part=supervisor ;;
*)
	echo "msi.sh: $binary is neither Tentacle.exe nor tentacle-supervisor.exe" >&2
	exit 1
	;;
esac
if [ -n "${5:-}" ]; then
	outdir=$5
else
	# dist/<build id>_windows_amd64_v1/[libexec/tentacle/]BINARY
	outdir=$(dirname "$binary")
	while :; do
		case $(basename "$outdir") in *_windows_amd64*) break ;; esac
		[ "$outdir" != / ] && [ "$outdir" != . ] || {
			echo "msi.sh: $binary is not in a goreleaser <id>_windows_amd64 build folder; give OUTDIR" >&2
			exit 1
		}
		outdir=$(dirname "$outdir")
	done
	outdir=$(dirname "$outdir")
fi

if ! command -v wixl >/dev/null 2>&1; then
	echo "msi.sh: wixl is not installed (apt-get install wixl msitools); cannot build the MSI" >&2
	exit 1
fi

# An MSI ProductVersion is numeric (major.minor.build): 1.2.4-snapshot.… is
# written 1.2.4. Snapshots of one version replace each other anyway
# (MajorUpgrade AllowDowngrades).
numeric=${version%%[-+]*}
case $numeric in
*[!0-9.]* | "" | .* | *. | *..*)
	echo "msi.sh: version $version does not start with X.Y.Z" >&2
	exit 1
	;;
esac

signfile() { # signfile IN OUT DESCRIPTION
	# The password goes through a private file, not the command line
	# (which other users can read in ps).
	passfile=$(mktemp)
	printf '%s' "${TENTACLE_CODESIGN_PASSWORD:-}" >"$passfile"
	rc=0
	osslsigncode sign -pkcs12 "$TENTACLE_CODESIGN_PFX" -readpass "$passfile" -h sha256 \
		-n "$3" -i https://github.com/tentacle-go/tentacle \
		${TENTACLE_CODESIGN_TIMESTAMP_URL:+-ts "$TENTACLE_CODESIGN_TIMESTAMP_URL"} \
		-in "$1" -out "$2" >/dev/null || rc=$?
	rm -f "$passfile"
	if [ "$rc" != 0 ]; then
		echo "msi.sh: osslsigncode could not sign $1 with $TENTACLE_CODESIGN_PFX (wrong TENTACLE_CODESIGN_PASSWORD?)" >&2
		exit 1
	fi
}

if [ -n "${TENTACLE_CODESIGN_PFX:-}" ]; then
	if ! command -v osslsigncode >/dev/null 2>&1; then
		echo "msi.sh: osslsigncode is not installed (apt-get install osslsigncode); cannot sign with $TENTACLE_CODESIGN_PFX" >&2
		exit 1
	fi
	if [ ! -r "$TENTACLE_CODESIGN_PFX" ]; then
		echo "msi.sh: TENTACLE_CODESIGN_PFX=$TENTACLE_CODESIGN_PFX is not a readable file" >&2
		exit 1
	fi
	if [ $part = agent ]; then
		signfile "$binary" "$binary.signed" "Octopus Deploy Tentacle (tentacle-go)"
	else
		signfile "$binary" "$binary.signed" "Octopus Deploy Tentacle (tentacle-go) script supervisor"
	fi
	mv -f "$binary.signed" "$binary"
fi

# The other build's hook may be running: record this binary under the lock,
# and go on only when the other one is recorded too.
mkdir -p "$outdir/.msi-parts"
exec 9>"$outdir/.msi-parts/lock"
flock 9
realpath "$binary" >"$outdir/.msi-parts/$part"
if [ ! -s "$outdir/.msi-parts/agent" ] || [ ! -s "$outdir/.msi-parts/supervisor" ]; then
	echo "msi.sh: $(basename "$binary") ready; the MSI is built when the other windows/amd64 binary is"
	exit 0
fi
msi=$outdir/tentacle_${version}_windows_amd64.msi
# wixl refuses an absolute Source path: give it the binaries relative to here.
exe=$(realpath --relative-to=. "$(cat "$outdir/.msi-parts/agent")")
supervisor=$(realpath --relative-to=. "$(cat "$outdir/.msi-parts/supervisor")")
wixl -a x64 -D Version="$numeric" -D Exe="$exe" -D Supervisor="$supervisor" -o "$msi.tmp" "$here/windows/tentacle.wxs"
if [ -n "${TENTACLE_CODESIGN_PFX:-}" ]; then
	signfile "$msi.tmp" "$msi.signed" "Octopus Deploy Tentacle (tentacle-go) installer"
	mv -f "$msi.signed" "$msi.tmp"
fi
mv -f "$msi.tmp" "$msi"
echo "msi.sh: $msi"
