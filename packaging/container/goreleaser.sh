#!/bin/sh
# goreleaser's post-build hook for the container images (goreleaser OSS's
# dockers: section needs a Docker daemon, and its ko: section a registry;
# neither is here). With TENTACLE_IMAGES=1, once both the linux/amd64
# tentacle and tentacle-supervisor builds are done, it runs what `make image`
# runs on those binaries and writes both OCI archives into goreleaser's dist
# folder, where checksums.txt lists them (checksum.extra_files) and the
# release feed carries them for `release mirror`. Without it, nothing:
# `make package` needs no podman.
# Both builds run this hook, in parallel: each records its binary under a
# lock in DIST/.image-parts and the one that finds both builds the images.
# The dist folder is the one the binary was built in (BINARY is
# DIST/<build id>_linux_amd64_v1/bin/tentacle or
# .../libexec/tentacle/tentacle-supervisor), so a configuration whose dist:
# is elsewhere (the package tests' second snapshot) gets its images there too.
set -eu
os=$1 arch=$2 bin=$3
[ "$os" = linux ] && [ "$arch" = amd64 ] || exit 0
[ "${TENTACLE_IMAGES:-}" = 1 ] || exit 0
case $(basename "$bin") in
tentacle) part=agent ;;
tentacle-supervisor) part=supervisor ;;
*)
	echo "goreleaser.sh: $bin is neither tentacle nor tentacle-supervisor" >&2
	exit 1
	;;
esac
dist=$(dirname "$bin")
while :; do
	case $(basename "$dist") in *_linux_amd64*) break ;; esac
	[ "$dist" != / ] && [ "$dist" != . ] || {
		echo "goreleaser.sh: $bin is not in a goreleaser <id>_linux_amd64 build folder" >&2
		exit 1
	}
	dist=$(dirname "$dist")
done
dist=$(dirname "$dist")
mkdir -p "$dist/.image-parts"
exec 9>"$dist/.image-parts/lock"
flock 9
realpath "$bin" >"$dist/.image-parts/$part"
if [ ! -s "$dist/.image-parts/agent" ] || [ ! -s "$dist/.image-parts/supervisor" ]; then
	echo "goreleaser.sh: $(basename "$bin") ready; the images are built when the other linux/amd64 binary is"
	exit 0
fi
make --no-print-directory image IMAGE_BINARY="$(cat "$dist/.image-parts/agent")" \
	IMAGE_SUPERVISOR="$(cat "$dist/.image-parts/supervisor")" IMAGE_DIR="$dist"
