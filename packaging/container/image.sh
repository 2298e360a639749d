#!/bin/sh
# image.sh BINARY ROOTFS OUTDIR [SUPERVISOR]: builds tentacle:TAG (FROM the
# Debian root filesystem ROOTFS, imported once as localhost/tentacle-base) and
# tentacle:TAG-static (FROM scratch) around the static BINARY and the
# tentacle-supervisor of the same build (SUPERVISOR, default: beside BINARY),
# installed beside it as /usr/bin/tentacle-supervisor, and writes
# each with `podman save --format oci-archive` into OUTDIR. TAG is the
# binary's version with + made - (a tag cannot hold +), or IMAGE_TAG. Run by `make image`
# and by goreleaser's post-build hook; see README.md here.
set -eu
bin=$1 rootfs=$2 out=$3
supervisor=${4:-$(dirname "$bin")/tentacle-supervisor}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$rootfs/.tentacle-rootfs" ] || { echo "image.sh: $rootfs is not a root filesystem made by make image-rootfs" >&2; exit 1; }
version=$("$bin" version)
# The agent runs scripts under the supervisor only when it is of its own
# build (agent/scripts.FindSupervisor): an image with a mismatched one would
# quietly run them under the whole binary.
sversion=$("$supervisor" version) || { echo "image.sh: $supervisor does not run" >&2; exit 1; }
[ "$sversion" = "$version" ] || { echo "image.sh: $supervisor is version $sversion, $bin is $version" >&2; exit 1; }
tag=${IMAGE_TAG:-$(printf %s "$version" | tr + -)}

# The base: imported once per build of the root filesystem (the marker's
# time names it), under a lock so that two builds import it once.
base=localhost/tentacle-base:bookworm-$(stat -c %Y "$rootfs/.tentacle-rootfs")
exec 9>"$rootfs.import.lock"
flock 9
if ! podman image exists "$base"; then
	tar -C "$rootfs" --exclude=./.tentacle-rootfs -c . | podman import --quiet - "$base" >/dev/null
fi
flock -u 9

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/tentacle"
cp "$supervisor" "$ctx/tentacle-supervisor"
chmod 0755 "$ctx/tentacle" "$ctx/tentacle-supervisor"
# The layout both images share: upstream's paths to the binary, and the
# application folder linked into the state volume.
mkdir -p "$ctx/layout/usr/bin" "$ctx/layout/opt/octopus/tentacle" "$ctx/layout/home/Octopus" \
	"$ctx/octopus/Applications"
ln -s tentacle "$ctx/layout/usr/bin/Tentacle"
ln -s /usr/bin/tentacle "$ctx/layout/opt/octopus/tentacle/Tentacle"
ln -s /etc/octopus/Applications "$ctx/layout/home/Octopus/Applications"
chmod 0700 "$ctx/octopus"
# uid/gid 999 octopus: Debian's accounts plus one; scratch has only these.
mkdir -p "$ctx/debian"
{ cat "$rootfs/etc/passwd"; echo 'octopus:x:999:999:Octopus Tentacle:/home/Octopus:/bin/bash'; } >"$ctx/debian/passwd"
{ cat "$rootfs/etc/group"; echo 'octopus:x:999:'; } >"$ctx/debian/group"
mkdir -p "$ctx/scratch/etc/ssl/certs" "$ctx/scratch/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\noctopus:x:999:999:Octopus Tentacle:/home/Octopus:/sbin/nologin\n' >"$ctx/scratch/etc/passwd"
printf 'root:x:0:\noctopus:x:999:\n' >"$ctx/scratch/etc/group"
cp "$rootfs/etc/ssl/certs/ca-certificates.crt" "$ctx/scratch/etc/ssl/certs/"
chmod 1777 "$ctx/scratch/tmp"

# --format docker: the OCI image format has no HEALTHCHECK field.
podman build --quiet --format docker --build-arg BASE="$base" --build-arg VERSION="$version" \
	-t "localhost/tentacle:$tag" -f "$here/Containerfile" "$ctx" >/dev/null
podman build --quiet --format docker --build-arg VERSION="$version" \
	-t "localhost/tentacle:$tag-static" -f "$here/Containerfile.static" "$ctx" >/dev/null
mkdir -p "$out"
for t in "$tag" "$tag-static"; do
	archive="$out/tentacle_${t}_linux_amd64.oci.tar"
	rm -f "$archive"
	podman save --quiet --format oci-archive -o "$archive" "localhost/tentacle:$t"
	echo "localhost/tentacle:$t $(podman image inspect --format '{{.Size}}' "localhost/tentacle:$t") bytes, $archive"
done
