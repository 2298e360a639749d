#!/bin/sh
# goreleaser's post-build hook for the container images (goreleaser OSS's
# dockers: section needs a Docker daemon, and its ko: section a registry;
# neither is here). With TENTACLE_IMAGES=1, after the linux/amd64 tentacle
# build it runs what `make image` runs on that binary and writes both OCI
# archives into goreleaser's dist folder, where checksums.txt lists them
# (checksum.extra_files) and the release feed carries them for `release
# mirror`. Without it, nothing: `make package` needs no podman.
# The dist folder is the one the binary was built in (BINARY is
# DIST/<build id>_<target>/tentacle), so a configuration whose dist: is
# elsewhere (the package tests' second snapshot) gets its images there too.
set -eu
os=$1 arch=$2 bin=$3
[ "$os" = linux ] && [ "$arch" = amd64 ] || exit 0
[ "${TENTACLE_IMAGES:-}" = 1 ] || exit 0
dist=$(dirname "$(dirname "$bin")")
make --no-print-directory image IMAGE_BINARY="$bin" IMAGE_DIR="$dist"
