#!/bin/sh
# install.sh: installs tentacle (a drop-in replacement for the Octopus Deploy
# Tentacle agent) from a release feed, verified, in one line:
#
#   curl -fsSL https://<feed>/install.sh | sh
#   curl -fsSL https://<feed>/install.sh | sh -s -- --version 1.4 --feed https://mirror.example/tentacle
#
# Debian/Ubuntu get the .deb (apt-get), RHEL/Fedora/Amazon Linux the .rpm
# (dnf/yum), SUSE the .rpm (zypper); Alpine and every other Linux the tarball
# (/usr/local/bin/tentacle and /opt/octopus/tentacle/Tentacle). Nothing is
# installed before the SHA-256 of the download matches the feed's
# checksums.txt (and, when minisign and a public key are at hand, the
# signature of checksums.txt matches too). Running it again with the same
# version installed does nothing and exits 0.
#
# The script is POSIX sh, and every statement is inside a function, so a
# download cut short by the network runs nothing: main is called on the last
# line only.
#
# Exit codes (stable, for automation):
#   0  installed, or that version was already installed
#   1  usage error (a bad option or value)
#   10 not root, and no sudo to become root
#   11 the feed cannot be reached or read (no network, wrong URL, a file missing)
#   12 this machine's architecture has no build
#   13 no version in the feed matches --version
#   14 checksum or signature mismatch (nothing was installed)
#   15 a tool the script needs is missing (curl or wget, a SHA-256 tool)
#   16 the package manager failed to install the package
#   17 --provision failed, or this tentacle has no provision command

# DEFAULT_FEED is a PLACEHOLDER until the project publishes a release feed
# (an index.json plus one folder per version, as `make package` lays out).
# When it cannot be read the script says so and asks for --feed.
DEFAULT_FEED="https://github.com/tentacle-go/tentacle/releases/download/feed"
# DEFAULT_PUBKEY is the minisign public key release checksums are signed
# with. Empty (a PLACEHOLDER) until the project publishes its release key;
# give one with --pubkey or TENTACLE_RELEASES_PUBKEY meanwhile.
DEFAULT_PUBKEY=""

EXIT_USAGE=1
EXIT_NOT_ROOT=10
EXIT_FEED=11
EXIT_ARCH=12
EXIT_NO_VERSION=13
EXIT_VERIFY=14
EXIT_TOOL=15
EXIT_INSTALL=16
EXIT_PROVISION=17

TARBALL_BIN=/usr/local/bin/tentacle
# The archive's tentacle/tentacle-supervisor: the agent runs each script's
# supervisor under it when it lies in ../libexec/tentacle from the agent's
# binary and is of the same build (off PATH, as the deb's /usr/libexec).
TARBALL_SUPERVISOR=/usr/local/libexec/tentacle/tentacle-supervisor
UPSTREAM_PATH=/opt/octopus/tentacle/Tentacle

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
# die CODE MESSAGE...: the message on stderr, then exit (the EXIT trap
# removes the temporary files).
die() {
	code=$1
	shift
	printf 'install.sh: error: %s\n' "$*" >&2
	exit "$code"
}

usage() {
	cat <<'EOF'
Usage: install.sh [options]

Installs tentacle from a release feed, verified by SHA-256 (and minisign).

Options:
  --version CONSTRAINT  latest (default: the newest non-prerelease), an exact
                        version (1.4.2, 1.5.0-rc.1), or a prefix (1.4: the newest 1.4.x)
  --feed URL            release feed: https://..., file:///dir, or a directory
                        (default: $TENTACLE_RELEASES_FEED, else the project's feed)
  --pubkey KEY          minisign public key (RW...) checksums.txt is signed with
                        (default: $TENTACLE_RELEASES_PUBKEY)
  --method METHOD       auto (default), deb, rpm or tarball
  --provision FILE      after installing, run `tentacle provision --file FILE`
  --dry-run             say what would be done; change nothing
  -h, --help            this help

Exit codes: 0 ok, 1 usage, 10 not root, 11 feed unreachable, 12 unsupported
architecture, 13 no matching version, 14 checksum/signature mismatch,
15 missing tool, 16 package manager failed, 17 provision failed.
EOF
}

parse_args() {
	CONSTRAINT=latest
	FEED=${TENTACLE_RELEASES_FEED:-}
	PUBKEY=${TENTACLE_RELEASES_PUBKEY:-$DEFAULT_PUBKEY}
	METHOD=auto
	PROVISION_FILE=""
	DRY_RUN=""
	while [ $# -gt 0 ]; do
		opt=$1
		case $opt in
		--*=*)
			val=${opt#*=}
			opt=${opt%%=*}
			shift
			set -- "$opt" "$val" "$@"
			continue
			;;
		esac
		case $opt in
		-h | --help)
			usage
			exit 0
			;;
		--dry-run)
			DRY_RUN=1
			shift
			continue
			;;
		--version | --feed | --pubkey | --method | --provision)
			[ $# -ge 2 ] || die $EXIT_USAGE "$opt needs a value (see --help)."
			val=$2
			shift 2
			;;
		*)
			die $EXIT_USAGE "unknown option '$opt' (see --help)."
			;;
		esac
		case $opt in
		--version) CONSTRAINT=$val ;;
		--feed) FEED=$val ;;
		--pubkey) PUBKEY=$val ;;
		--method) METHOD=$val ;;
		--provision) PROVISION_FILE=$val ;;
		esac
	done
	case $METHOD in
	auto | deb | rpm | tarball) ;;
	*) die $EXIT_USAGE "--method must be auto, deb, rpm or tarball, not '$METHOD'." ;;
	esac
	CONSTRAINT=${CONSTRAINT#v}
	case $CONSTRAINT in
	latest) CONSTRAINT_KIND=latest ;;
	[0-9]*.[0-9]*.[0-9]*)
		CONSTRAINT_KIND=exact
		;;
	[0-9]* )
		case $CONSTRAINT in
		*[!0-9.]* | *..* | *. | *.*.*)
			die $EXIT_USAGE "--version '$CONSTRAINT' is not a version: give latest, an exact version (1.4.2) or a prefix (1.4). Constraints such as '~> 1.4' are for \`tentacle upgrade\`."
			;;
		esac
		CONSTRAINT_KIND=prefix
		;;
	*)
		die $EXIT_USAGE "--version '$CONSTRAINT' is not a version: give latest, an exact version (1.4.2) or a prefix (1.4). Constraints such as '~> 1.4' are for \`tentacle upgrade\`."
		;;
	esac
	if [ -n "$PROVISION_FILE" ] && [ ! -r "$PROVISION_FILE" ]; then
		die $EXIT_USAGE "--provision $PROVISION_FILE: no such readable file."
	fi
	FEED_IS_DEFAULT=""
	if [ -z "$FEED" ]; then
		FEED=$DEFAULT_FEED
		FEED_IS_DEFAULT=1
	fi
	FEED=${FEED%/}
	case $FEED in
	https://*) FEED_KIND=url ;;
	http://127.0.0.1:* | http://127.0.0.1/* | http://localhost:* | http://localhost/* | http://\[::1\]:* | http://\[::1\]/*)
		FEED_KIND=url
		;;
	http://*)
		die $EXIT_USAGE "--feed $FEED: plain http is allowed only on loopback; use https:// (the checksums come from the feed, so it must be authentic)."
		;;
	file://*)
		FEED_KIND=dir
		FEED=${FEED#file://}
		;;
	*://*)
		die $EXIT_USAGE "--feed $FEED: give an https:// URL, a file:// URL or a directory."
		;;
	*) FEED_KIND=dir ;;
	esac
}

# detect_arch sets ARCH (the release's name) and the deb and rpm names of it.
detect_arch() {
	machine=$(uname -m)
	case $machine in
	x86_64 | amd64)
		ARCH=amd64 DEB_ARCH=amd64 RPM_ARCH=x86_64
		;;
	aarch64 | arm64)
		ARCH=arm64 DEB_ARCH=arm64 RPM_ARCH=aarch64
		;;
	armv7l | armv7 | armv7hl | armv8l)
		ARCH=armv7 DEB_ARCH=armhf RPM_ARCH=armv7hl
		;;
	*)
		die $EXIT_ARCH "this machine's architecture '$machine' has no tentacle build (there are amd64, arm64 and armv7). Build from source: go install github.com/tentacle-go/tentacle/cmd/tentacle@latest"
		;;
	esac
}

# detect_method chooses how to install: the distribution's package manager
# when it is one we build for and it is there, else the tarball.
detect_method() {
	OS_ID=unknown OS_LIKE=""
	if [ -r /etc/os-release ]; then
		OS_ID=$(sed -n 's/^ID=//p' /etc/os-release | tr -d '"' | head -n 1)
		OS_LIKE=$(sed -n 's/^ID_LIKE=//p' /etc/os-release | tr -d '"' | head -n 1)
	fi
	PKG_TOOL=""
	if [ "$METHOD" = auto ]; then
		METHOD=tarball
		for id in $OS_ID $OS_LIKE; do
			case $id in
			debian | ubuntu)
				if have apt-get || have dpkg; then METHOD=deb; fi
				break
				;;
			rhel | fedora | centos | amzn | rocky | almalinux | ol)
				if have dnf || have yum || have rpm; then METHOD=rpm; fi
				break
				;;
			suse | opensuse | opensuse-leap | opensuse-tumbleweed | sles)
				if have zypper || have rpm; then METHOD=rpm; fi
				break
				;;
			esac
		done
	fi
	case $METHOD in
	deb)
		if have apt-get; then PKG_TOOL=apt-get; elif have dpkg; then PKG_TOOL=dpkg; else
			die $EXIT_TOOL "--method deb needs apt-get or dpkg, and this machine has neither."
		fi
		;;
	rpm)
		for t in zypper dnf yum rpm; do
			if have $t; then
				PKG_TOOL=$t
				break
			fi
		done
		[ -n "$PKG_TOOL" ] || die $EXIT_TOOL "--method rpm needs dnf, yum, zypper or rpm, and this machine has none."
		;;
	tarball)
		have tar || die $EXIT_TOOL "the tarball install needs tar and gzip."
		;;
	esac
}

have() { command -v "$1" >/dev/null 2>&1; }

# detect_tools chooses the downloader and the SHA-256 tool.
detect_tools() {
	if [ "$FEED_KIND" = url ]; then
		if have curl; then DOWNLOADER=curl; elif have wget; then DOWNLOADER=wget; else
			die $EXIT_TOOL "neither curl nor wget is installed: install one (apt-get install curl, dnf install curl, apk add curl) or give a local --feed directory."
		fi
	fi
	if have sha256sum; then SHA_TOOL=sha256sum; elif have shasum; then SHA_TOOL=shasum; elif have openssl; then SHA_TOOL=openssl; else
		die $EXIT_TOOL "no SHA-256 tool (sha256sum, shasum or openssl) to verify the download with: install coreutils or openssl."
	fi
}

sha256_of() {
	case $SHA_TOOL in
	sha256sum) sha256sum "$1" | cut -d ' ' -f 1 ;;
	shasum) shasum -a 256 "$1" | cut -d ' ' -f 1 ;;
	openssl) openssl dgst -sha256 "$1" | sed 's/^.*= *//' ;;
	esac
}

# fetch NAME DEST copies <feed>/NAME to DEST, or exits saying why not.
fetch() {
	name=$1 dest=$2
	if [ "$FEED_KIND" = dir ]; then
		if [ ! -f "$FEED/$name" ]; then
			feed_error "$FEED/$name does not exist"
		fi
		cp "$FEED/$name" "$dest" || feed_error "cannot read $FEED/$name"
		return 0
	fi
	url="$FEED/$name"
	if [ "$DOWNLOADER" = curl ]; then
		curl -fsSL --proto '=https,http' --connect-timeout 20 --retry 2 -o "$dest" "$url" 2>"$TMP/fetch.err"
		rc=$?
		[ $rc -eq 0 ] && return 0
		case $rc in
		6) feed_error "cannot resolve the host of $url (no network, or no DNS)" ;;
		7 | 28 | 35 | 56) feed_error "cannot connect to $url (no network, a firewall, or the server is down): $(cat "$TMP/fetch.err")" ;;
		22) feed_error "the server has no $url: $(cat "$TMP/fetch.err")" ;;
		*) feed_error "downloading $url failed (curl exit $rc): $(cat "$TMP/fetch.err")" ;;
		esac
	else
		wget -q -T 20 -t 3 -O "$dest" "$url" 2>"$TMP/fetch.err"
		rc=$?
		[ $rc -eq 0 ] && return 0
		case $rc in
		4) feed_error "cannot reach $url (no network, no DNS, or the server is down)" ;;
		8) feed_error "the server has no $url (HTTP error)" ;;
		*) feed_error "downloading $url failed (wget exit $rc): $(cat "$TMP/fetch.err")" ;;
		esac
	fi
}

feed_error() {
	if [ -n "$FEED_IS_DEFAULT" ]; then
		die $EXIT_FEED "$1. This is the project's default feed ($DEFAULT_FEED), which may not be published yet or not reachable from here: give a feed with --feed URL or TENTACLE_RELEASES_FEED=URL (an https mirror, or a directory made by \`make package\`)."
	fi
	die $EXIT_FEED "$1. Check the feed (--feed $FEED) and this machine's network."
}

# list_versions prints "VERSION PRERELEASE" for each entry of index.json, in
# the feed's order (newest first). Plain awk, no jq: a version entry is a
# flat object, so splitting on "}" gives one entry per record.
list_versions() {
	tr -d '\r\n' <"$1" | awk 'BEGIN { RS = "}" }
	{
		if (!match($0, /"version"[ \t]*:[ \t]*"[^"]*"/)) next
		v = substr($0, RSTART, RLENGTH); sub(/^"version"[ \t]*:[ \t]*"/, "", v); sub(/"$/, "", v)
		pre = ($0 ~ /"prerelease"[ \t]*:[ \t]*true/) ? "true" : "false"
		print v, pre
	}'
}

# choose_version sets VERSION from the feed's index and CONSTRAINT.
choose_version() {
	fetch index.json "$TMP/index.json"
	schema=$(tr -d '\r\n' <"$TMP/index.json" | sed -n 's/.*"schema"[ 	]*:[ 	]*\([0-9][0-9]*\).*/\1/p')
	if [ -z "$schema" ]; then
		feed_error "$FEED/index.json is not a release index (no \"schema\")"
	fi
	if [ "$schema" != 1 ]; then
		die $EXIT_FEED "$FEED/index.json has schema $schema; this install.sh understands schema 1. Get a newer install.sh from the same feed."
	fi
	list_versions "$TMP/index.json" >"$TMP/versions"
	VERSION=""
	while read -r v pre; do
		case $CONSTRAINT_KIND in
		latest) [ "$pre" = false ] && VERSION=$v ;;
		exact) [ "$v" = "$CONSTRAINT" ] && VERSION=$v ;;
		prefix)
			case $v in "$CONSTRAINT".*) [ "$pre" = false ] && VERSION=$v ;; esac
			;;
		esac
		[ -n "$VERSION" ] && break
	done <"$TMP/versions"
	if [ -z "$VERSION" ]; then
		known=$(awk '{ printf "%s%s%s", sep, $1, ($2 == "true" ? " (prerelease)" : ""); sep = ", " }' "$TMP/versions")
		[ -n "$known" ] || known="none"
		case $CONSTRAINT_KIND in
		latest) die $EXIT_NO_VERSION "the feed $FEED has no release that is not a prerelease (it has: $known). Pick one with --version." ;;
		*) die $EXIT_NO_VERSION "no version in the feed $FEED matches --version $CONSTRAINT (it has: $known)." ;;
		esac
	fi
	# deb and rpm versions write a SemVer pre-release's first '-' as '~' (so
	# that 1.2.3~rc.1 sorts before 1.2.3) and add the package revision -1, as
	# nfpm names them (packaging/README.md).
	PKG_VERSION=$(printf '%s' "$VERSION" | sed 's/-/~/')
	case $METHOD in
	deb) ASSET="tentacle-go_${PKG_VERSION}-1_${DEB_ARCH}.deb" ;;
	rpm) ASSET="tentacle-go-${PKG_VERSION}-1.${RPM_ARCH}.rpm" ;;
	tarball) ASSET="tentacle_${VERSION}_linux_${ARCH}.tar.gz" ;;
	esac
}

# find_installed sets INSTALLED_BIN and INSTALLED_VERSION to the tentacle
# on this machine, if any.
find_installed() {
	INSTALLED_BIN="" INSTALLED_VERSION=""
	for b in /usr/bin/tentacle "$TARBALL_BIN" "$(command -v tentacle 2>/dev/null)"; do
		if [ -n "$b" ] && [ -x "$b" ]; then
			INSTALLED_BIN=$b
			break
		fi
	done
	[ -n "$INSTALLED_BIN" ] || return 0
	# upstream's Tentacle answers `version` too; ours prints SemVer only.
	INSTALLED_VERSION=$("$INSTALLED_BIN" version 2>/dev/null | head -n 1 | tr -d '\r')
}

# become_root sets SUDO to what to prefix privileged commands with.
become_root() {
	SUDO=""
	if [ "$(id -u)" = 0 ]; then
		return 0
	fi
	if have sudo; then
		SUDO=sudo
		say "not running as root: using sudo for the installation."
		return 0
	fi
	die $EXIT_NOT_ROOT "installing needs root, and this user ($(id -un 2>/dev/null || id -u)) is not root and sudo is not installed. Run it as root: curl -fsSL <url>/install.sh | sudo sh"
}

# verify checks checksums.txt's signature (when it can), then the asset's
# SHA-256 against checksums.txt. Nothing is installed before it returns.
verify() {
	file=$1
	if [ -n "$PUBKEY" ]; then
		if have minisign; then
			fetch "$VERSION/checksums.txt.minisig" "$TMP/checksums.txt.minisig"
			if ! minisign -Vq -P "$PUBKEY" -m "$TMP/checksums.txt" -x "$TMP/checksums.txt.minisig" >"$TMP/minisign.out" 2>&1; then
				die $EXIT_VERIFY "the signature of $VERSION/checksums.txt does not match the public key $PUBKEY: $(cat "$TMP/minisign.out"). Nothing was installed."
			fi
			say "signature of checksums.txt verified (minisign)."
		else
			warn "minisign is not installed, so the signature of checksums.txt was not checked (the SHA-256 still is). Install minisign to check it."
		fi
	fi
	want=$(awk -v n="$ASSET" '{ f = $2; sub(/^\*/, "", f); if (f == n) { print $1; exit } }' "$TMP/checksums.txt")
	[ -n "$want" ] || die $EXIT_VERIFY "$VERSION/checksums.txt has no line for $ASSET. Nothing was installed."
	got=$(sha256_of "$file")
	if [ "$got" != "$want" ]; then
		die $EXIT_VERIFY "checksum mismatch for $ASSET: checksums.txt says $want, the download is $got. The download or the feed has been altered or corrupted; nothing was installed."
	fi
	say "SHA-256 of $ASSET verified ($SHA_TOOL)."
}

# asset_available exits when checksums.txt does not list ASSET (the version
# has no build for this architecture or package type).
asset_available() {
	if ! awk -v n="$ASSET" '{ f = $2; sub(/^\*/, "", f); if (f == n) found = 1 } END { exit !found }' "$TMP/checksums.txt"; then
		die $EXIT_ARCH "version $VERSION in the feed has no $ASSET (no build for $ARCH as $METHOD). Try --method tarball, or another --version."
	fi
}

install_cmd() {
	case $METHOD:$PKG_TOOL in
	deb:apt-get) echo "DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades $1" ;;
	deb:dpkg) echo "dpkg -i $1" ;;
	rpm:dnf) echo "dnf install -y $1 (dnf downgrade -y $1 when a newer one is installed)" ;;
	rpm:yum) echo "yum install -y $1 (yum downgrade -y $1 when a newer one is installed)" ;;
	rpm:zypper) echo "zypper --non-interactive install --allow-unsigned-rpm --oldpackage $1" ;;
	rpm:rpm) echo "rpm -U --oldpackage $1" ;;
	tarball:*) echo "tar -xzf $1, then install tentacle/tentacle-supervisor as $TARBALL_SUPERVISOR and tentacle/Tentacle as $TARBALL_BIN, and link $UPSTREAM_PATH to it" ;;
	esac
}

install_package() {
	file=$1
	case $METHOD:$PKG_TOOL in
	deb:apt-get)
		# apt-get's sandbox user must be able to read the file.
		chmod 0755 "$TMP" && chmod 0644 "$file"
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades "$file" ||
			die $EXIT_INSTALL "apt-get could not install $ASSET (its output is above)."
		;;
	deb:dpkg)
		$SUDO dpkg -i "$file" || die $EXIT_INSTALL "dpkg could not install $ASSET (its output is above)."
		;;
	rpm:dnf | rpm:yum)
		if ! $SUDO "$PKG_TOOL" install -y "$file"; then
			$SUDO "$PKG_TOOL" downgrade -y "$file" || die $EXIT_INSTALL "$PKG_TOOL could not install $ASSET (its output is above)."
		fi
		;;
	rpm:zypper)
		$SUDO zypper --non-interactive install --allow-unsigned-rpm --oldpackage "$file" ||
			die $EXIT_INSTALL "zypper could not install $ASSET (its output is above)."
		;;
	rpm:rpm)
		$SUDO rpm -U --oldpackage "$file" || die $EXIT_INSTALL "rpm could not install $ASSET (its output is above)."
		;;
	tarball:*)
		install_tarball "$file"
		;;
	esac
}

# put_program SRC DST: copies SRC beside DST, then renames it over DST: a
# running agent (or a running script's supervisor) keeps its file and
# nobody ever sees a half-written one.
put_program() {
	if ! { $SUDO mkdir -p "$(dirname "$2")" &&
		$SUDO cp "$1" "$2.new" &&
		$SUDO chmod 0755 "$2.new" &&
		$SUDO mv -f "$2.new" "$2"; }; then
		die $EXIT_INSTALL "cannot install $2."
	fi
}

install_tarball() {
	if ! { mkdir "$TMP/unpacked" && tar -xzf "$1" -C "$TMP/unpacked"; }; then
		die $EXIT_INSTALL "cannot unpack $ASSET."
	fi
	[ -f "$TMP/unpacked/tentacle/Tentacle" ] ||
		die $EXIT_INSTALL "$ASSET has no tentacle/Tentacle inside; it is not a tentacle release archive."
	# The supervisor first, so that the new agent finds its own; an archive
	# without one leaves none of an older version.
	if [ -f "$TMP/unpacked/tentacle/tentacle-supervisor" ]; then
		put_program "$TMP/unpacked/tentacle/tentacle-supervisor" "$TARBALL_SUPERVISOR"
		say "installed $TARBALL_SUPERVISOR."
	elif [ -e "$TARBALL_SUPERVISOR" ]; then
		$SUDO rm -f "$TARBALL_SUPERVISOR" || die $EXIT_INSTALL "cannot remove the old $TARBALL_SUPERVISOR."
		$SUDO rmdir "$(dirname "$TARBALL_SUPERVISOR")" 2>/dev/null || true
		say "removed $TARBALL_SUPERVISOR (this version has none)."
	fi
	put_program "$TMP/unpacked/tentacle/Tentacle" "$TARBALL_BIN"
	say "installed $TARBALL_BIN."
	# Scripts written for upstream call /opt/octopus/tentacle/Tentacle. An
	# upstream install there (a real file) is left alone.
	if [ -e "$UPSTREAM_PATH" ] && [ ! -L "$UPSTREAM_PATH" ]; then
		warn "$UPSTREAM_PATH is an existing (upstream?) Tentacle, left as it is; remove it and rerun to link it to $TARBALL_BIN."
	else
		if ! { $SUDO mkdir -p "$(dirname "$UPSTREAM_PATH")" &&
			$SUDO ln -sfn "$TARBALL_BIN" "$UPSTREAM_PATH"; }; then
			die $EXIT_INSTALL "cannot link $UPSTREAM_PATH to $TARBALL_BIN."
		fi
		say "linked $UPSTREAM_PATH -> $TARBALL_BIN."
	fi
}

run_provision() {
	bin=$1
	# Exit 2 is "unknown command", as upstream's CLI.
	"$bin" provision --help >/dev/null 2>&1
	if [ $? -eq 2 ]; then
		die $EXIT_PROVISION "tentacle $VERSION has no \`provision\` command yet, so --provision $PROVISION_FILE cannot be applied. Install a version that has it, or run the setup commands (create-instance, configure, register-with, service) yourself."
	fi
	say "running: $bin provision --file $PROVISION_FILE"
	$SUDO "$bin" provision --file "$PROVISION_FILE" || die $EXIT_PROVISION "tentacle provision --file $PROVISION_FILE failed (its output is above)."
}

cleanup() {
	if [ -n "${TMP:-}" ] && [ -d "$TMP" ]; then
		rm -rf "$TMP"
	fi
}

main() {
	parse_args "$@"
	detect_arch
	detect_method
	detect_tools
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/tentacle-install.XXXXXX") || die $EXIT_TOOL "cannot create a temporary directory (is ${TMPDIR:-/tmp} writable?)."
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	say "feed $FEED; $OS_ID on $ARCH; installing with $METHOD${PKG_TOOL:+ ($PKG_TOOL)}."
	choose_version
	say "version $VERSION (--version $CONSTRAINT): $ASSET"

	find_installed
	current=$INSTALLED_VERSION
	if [ -n "$current" ] && [ "$current" = "$VERSION" ]; then
		say "tentacle $VERSION is already installed ($INSTALLED_BIN); nothing to do."
		if [ -n "$PROVISION_FILE" ]; then
			if [ -n "$DRY_RUN" ]; then
				say "dry run: would run $INSTALLED_BIN provision --file $PROVISION_FILE"
			else
				become_root
				run_provision "$INSTALLED_BIN"
			fi
		fi
		exit 0
	fi
	if [ -n "$current" ]; then
		say "tentacle $current is installed ($INSTALLED_BIN); it will be replaced by $VERSION."
	fi

	fetch "$VERSION/checksums.txt" "$TMP/checksums.txt"
	asset_available
	if [ -n "$DRY_RUN" ]; then
		say "dry run: would download $FEED/$VERSION/$ASSET"
		say "dry run: would verify its SHA-256 against $FEED/$VERSION/checksums.txt${PUBKEY:+ and the minisign signature of checksums.txt}"
		say "dry run: would run $(install_cmd "./$ASSET")"
		[ -z "$PROVISION_FILE" ] || say "dry run: would run tentacle provision --file $PROVISION_FILE"
		say "dry run: nothing was changed."
		exit 0
	fi
	become_root

	say "downloading $ASSET"
	fetch "$VERSION/$ASSET" "$TMP/$ASSET"
	verify "$TMP/$ASSET"
	install_package "$TMP/$ASSET"

	bin=/usr/bin/tentacle
	[ "$METHOD" = tarball ] && bin=$TARBALL_BIN
	now=$("$bin" version 2>/dev/null | head -n 1)
	if [ "$now" != "$VERSION" ]; then
		die $EXIT_INSTALL "after installing, $bin reports version '$now', not $VERSION."
	fi
	say "tentacle $VERSION is installed: $bin"
	if [ -n "$PROVISION_FILE" ]; then
		run_provision "$bin"
	else
		say "next: tentacle create-instance ... (see https://github.com/tentacle-go/tentacle#setting-up-an-instance)"
	fi
}

main "$@"
