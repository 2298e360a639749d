#!/bin/sh
# Upstream's documented first step after installing the package: the interactive setup (tentacle setup).
exec /usr/bin/tentacle setup "$@"
