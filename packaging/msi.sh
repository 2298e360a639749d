#!/bin/sh
# Builds the Windows installer, tentacle_<version>_windows_amd64.msi, from the
# windows/amd64 Tentacle.exe with wixl (Debian's wixl package) and
# packaging/windows/tentacle.wxs. goreleaser OSS has no msi: section (Pro
# only), so the archive build runs this as its post-hook; for every other
# target it does nothing.
#
# Usage: msi.sh OS ARCH BINARY VERSION [OUTDIR]
#   OUTDIR defaults to goreleaser's dist folder (two levels above BINARY),
#   where checksum.extra_files finds the MSI.
#
# Code signing: when TENTACLE_CODESIGN_PFX names a PKCS#12 file (certificate
# and private key; its password in TENTACLE_CODESIGN_PASSWORD, if any),
# Tentacle.exe is signed before it goes into the MSI (so the zip archive,
# made after this hook, holds the signed binary too), then the MSI itself,
# with osslsigncode (SHA-256). TENTACLE_CODESIGN_TIMESTAMP_URL adds an
# RFC 3161 timestamp from that server. Without the PFX nothing is signed.
set -eu
os=$1
arch=$2
binary=$3
version=$4
[ "$os/$arch" = windows/amd64 ] || exit 0
here=$(cd "$(dirname "$0")" && pwd)
outdir=${5:-$(dirname "$(dirname "$binary")")}

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
	signfile "$binary" "$binary.signed" "Octopus Deploy Tentacle (tentacle-go)"
	mv -f "$binary.signed" "$binary"
fi

mkdir -p "$outdir"
msi=$outdir/tentacle_${version}_windows_amd64.msi
# wixl refuses an absolute Source path: give it the binary relative to here.
exe=$(realpath --relative-to=. "$binary")
wixl -a x64 -D Version="$numeric" -D Exe="$exe" -o "$msi.tmp" "$here/windows/tentacle.wxs"
if [ -n "${TENTACLE_CODESIGN_PFX:-}" ]; then
	signfile "$msi.tmp" "$msi.signed" "Octopus Deploy Tentacle (tentacle-go) installer"
	mv -f "$msi.signed" "$msi.tmp"
fi
mv -f "$msi.tmp" "$msi"
echo "msi.sh: $msi"
