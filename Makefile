# tentacle: build, test and package. Every target installs what it needs
# (Debian packages with apt-get, Go tools pinned by version), so that a fresh
# Debian machine needs only `make demo` and `make test`.

SHELL          := /bin/bash
GO             ?= go
BIN            := bin/tentacle
# VERSION is SemVer, as `tentacle version` must print (x.y.z): a release tag
# without its v (1.2.3), else 0.0.0-dev+<commit>, with .dirty for uncommitted
# changes (build metadata: it never sorts above a release).
VERSION        ?= $(shell v=$$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null) && echo "$$v" | sed "s/^v//" || { c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && echo "0.0.0-dev+$$c$$(git diff --quiet HEAD 2>/dev/null || echo .dirty)"; } || echo 0.0.0-dev)
BRANCH         ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo main)
LDFLAGS        := -s -w -X main.version=$(VERSION) -X main.branch=$(BRANCH)
GORELEASER_VER := v2.16.0
GOBIN          := $(shell $(GO) env GOPATH)/bin
# Packages the protocol and agent race tests need (cgo for -race), and the
# ones the service tests need: systemd-analyze verify for generated units, a
# real systemd booted in systemd-nspawn, debootstrap for its root filesystem;
# openssl makes the certificates Go's x509 refuses that the certificate tests use.
# podman and runc build and run the container images (make image,
# TestContainerImages). The install.sh tests (scripts/) run it under dash and busybox sh, shellcheck
# it, sign a feed with minisign and validate the cloud-init examples with
# cloud-init's schema checker (cloud-init is installed disabled: see deps).
# tmux is the real terminal the `tentacle setup` wizard's tests type into.
# wine64 (its loader is /usr/lib/wine/wine64) and mingw run the Windows build
# (test-windows, and the Windows end-to-end tests in unit: internal/winetest).
WINE_APT_PACKAGES := wine64 gcc-mingw-w64-x86-64
APT_PACKAGES   := $(WINE_APT_PACKAGES) gcc libc6-dev openssl systemd systemd-container debootstrap iproute2 nftables iptables ufw firewalld dbus \
                  dash busybox shellcheck minisign cloud-init tmux podman runc

.PHONY: all build test test-windows vet fmt-check unit fuzz soak demo bench bench-go bench-e2e package package-test goreleaser deps clean cross nspawn-rootfs image image-rootfs

all: build

# deps installs the system packages the tests need, only when missing.
# Installing a package must not start its service on a developer's machine
# (firewalld would take over its firewall): a temporary policy-rc.d tells
# Debian's maintainer scripts not to start anything, as in a container, and
# cloud-init (wanted for its schema checker only) is disabled at boot.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		guard=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod 0755 /usr/sbin/policy-rc.d && guard=1; fi; \
		case " $$missing " in *" cloud-init "*) $$SUDO mkdir -p /etc/cloud && $$SUDO touch /etc/cloud/cloud-init.disabled;; esac; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; rc=$$?; \
		if [ -n "$$guard" ]; then $$SUDO rm -f /usr/sbin/policy-rc.d; fi; \
		exit $$rc; \
	fi

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tentacle
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(dir $(BIN))tentacle-supervisor ./cmd/tentacle-supervisor

# test is what CI runs (.ci/run): static checks, every test (the race
# detector on all but the packages that link the cloud SDKs, see unit), the
# Windows tests under Wine, fuzzing, then `make package` and the tests of
# what it made. `make package` builds every release target, so a
# platform-specific file that does not compile fails here (cross is not
# repeated). The two Debian root filesystems (systemd-nspawn's and the
# image's base) are built in the background from the start: debootstrap
# waits mostly on downloads and dpkg, which overlap with vet's compiling;
# the tests that need them wait on their locks. goreleaser, when missing, is
# built in the background too, at low priority: its compile (~5 min on a new
# machine) fills the time the tests spend waiting, and `make package` waits
# on its lock instead of building it a second time.
test: deps
	@mkdir -p .cache && ( $(MAKE) --no-print-directory nspawn-rootfs >.cache/nspawn-rootfs.log 2>&1 & ) \
		&& ( $(MAKE) --no-print-directory image-rootfs >.cache/image-rootfs.log 2>&1 & ) \
		&& ( nice -n 10 $(MAKE) --no-print-directory $(GOBIN)/goreleaser >.cache/goreleaser-install.log 2>&1 & )
	@$(MAKE) --no-print-directory vet fmt-check unit test-windows fuzz package-test

# RELEASE_GOENV: the compiler flags releases are built with (.goreleaser.yaml:
# static, -trimpath). vet, the tests that do not use the race detector, the
# tests' own builds of the binary (internal/releasebuild) and `make package`
# all use them, so a CI run compiles the program once per platform and every
# later build of it only links. Each other set of flags is one more compile
# of everything, the cloud SDKs included (docs/benchmarks.md).
RELEASE_GOENV := CGO_ENABLED=0 GOFLAGS=-trimpath

vet:
	$(RELEASE_GOENV) $(GO) vet ./...
	$(RELEASE_GOENV) GOOS=windows $(GO) vet ./...
	$(RELEASE_GOENV) GOOS=darwin $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# cross builds every release target quickly, without packaging (make test
# gets the same from make package).
cross:
	GOOS=linux   GOARCH=amd64 $(GO) build -o /dev/null ./cmd/tentacle
	GOOS=linux   GOARCH=arm64 $(GO) build -o /dev/null ./cmd/tentacle
	GOOS=linux   GOARCH=arm GOARM=7 $(GO) build -o /dev/null ./cmd/tentacle
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/tentacle
	GOOS=darwin  GOARCH=arm64 $(GO) build -o /dev/null ./cmd/tentacle

# unit runs every package's tests but ./packaging, whose tests install the
# packages `make package` builds (package-test). The race detector runs on
# every package that does not link the cloud SDKs (aws-sdk-go-v2, the Azure
# SDK): the agent, the protocol, provision's release, upgrade and doctor, the
# host firewalls, packaging's feed. The few that link them (cmd/tentacle,
# firewall/aws and azure, provision/plan and setup) run without it, built with
# the release flags: their race build was the largest single term of a cold
# run (docs/benchmarks.md), and their concurrency is the agent's, which is
# raced in its own packages. The two sets run side by side; lines of the
# second are marked "[no race]". cmd/tentacle's test binary holds the
# container tests (systemd-nspawn, and podman: TestContainerImages builds the
# images): more than go test's default 10 minutes on a cold or loaded machine.
SDK_LINKED_PKGS = $(shell $(GO) list -f '{{.ImportPath}}{{range .Deps}} {{.}}{{end}}' ./... | awk '/aws-sdk-go-v2|azure-sdk-for-go/ {print $$1}')
unit:
	@sdk="$(SDK_LINKED_PKGS)"; race=$$($(GO) list ./... | grep -v '/packaging$$' | grep -vxF -f <(tr ' ' '\n' <<<"$$sdk")); \
	echo "[no race] go test with the release flags: $$sdk"; \
	( set -o pipefail; $(RELEASE_GOENV) $(GO) test -p 1 -count=1 -timeout 30m $$sdk 2>&1 | sed -u 's/^/[no race] /' ) & bg=$$!; \
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m $$race; rc=$$?; \
	wait $$bg; bgrc=$$?; [ $$rc = 0 ] && [ $$bgrc = 0 ]

# test-windows runs every package's Windows test binary under Wine
# (internal/winetest, shared recipe: windows-under-wine.md): the ProcessPrng
# shim and the standard-library overlay Go 1.26 needs under Wine 8.0 are
# built once and cached under .cache/wine, the test binaries run once all
# are built, four at a time, each worker in a fresh prefix of its own, and
# it prints `windows: N passed, N failed` (a skip prints its reason).
# WINDOWS_RUN narrows it (-test.run). Beside the packages the suite also
# runs (-e2e) the end-to-end tests of
# tentacle.exe under Wine driven from the Linux build (cmd/tentacle
# wine_e2e_linux_test.go: the agent, and the service under Wine's SCM;
# wine_upgrade_linux_test.go: `tentacle upgrade` from one snapshot's MSI to
# the next, wixl building both), which skip outside this target; built with
# the release flags, as `unit` built cmd/tentacle's tests, so make test
# reuses that build instead of compiling the program once more with cgo.
# Cost: see docs/benchmarks.md.
WINDOWS_RUN ?=
test-windows:
	@$(MAKE) --no-print-directory deps APT_PACKAGES='$(WINE_APT_PACKAGES) $(MSI_APT_PACKAGES)'
	$(GO) run ./internal/winetest/windowssuite $(if $(WINDOWS_RUN),-run '$(WINDOWS_RUN)',-e2e '^TestWindows(Agent|Service|Upgrade)UnderWine$$')

# fuzz runs every fuzz target of the network decoders for a bounded number
# of executions (about 30 s each here), starting from the corpus committed
# under each package's testdata/fuzz. A count, not a duration: with
# -fuzztime 30s Go's fuzzing coordinator can fail a run with a bare "context
# deadline exceeded" when a worker is mid-input at the deadline (a known race,
# seen here once under load), and a count has no deadline to race. FUZZTIME
# overrides every target's count (e.g. FUZZTIME=5m for a long local run).
FUZZTIME    ?=
# Minimising a new input may take 60 s by default, and took most of each run:
# the targets reported ~0 execs/s after their first find (47,760 execs in 15 s
# with 2 s of minimising, 3,344 without).
FUZZMINIMIZETIME ?= 2s
FUZZTARGETS := agent/halibut:FuzzReadMessage:200000x agent/halibut:FuzzReadIdentity:300000x \
               agent/halibut:FuzzDataStreamRecords:300000x agent/halibut:FuzzParseDoc:30000x
fuzz:
	@set -e; for t in $(FUZZTARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$${rest#*:}; \
		budget=$(or $(FUZZTIME),$$budget); \
		echo "fuzz $$pkg $$name for $$budget"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $$budget -fuzzminimizetime $(FUZZMINIMIZETIME) ./$$pkg/ ; \
	done

# fuzz-long runs every fuzz target, those above and the decoders that only
# read operators' input (the JSON view, GUIDs, .NET time spans), for
# FUZZLONGTIME each (10 minutes: about 70 minutes in all), outside CI (for
# make soak), at nice 19. Not at SCHED_IDLE, and not on a saturated machine:
# Go's fuzzing coordinator declares a worker that has not answered for 1 s
# hung and reports the input it held as a failure (seen here at load 70:
# "fuzzing process hung or terminated unexpectedly", an input that then
# passes in 0.00 s). Figures and findings: docs/benchmarks.md.
FUZZLONGTIME ?= 10m
FUZZLONGTARGETS := $(FUZZTARGETS) agent/halibut:FuzzDocJSON:- agent/halibut:FuzzParseGuid:- agent/timespan:FuzzParse:-
.PHONY: fuzz-long
fuzz-long:
	@nice -n 19 $(MAKE) --no-print-directory fuzz FUZZTARGETS='$(FUZZLONGTARGETS)' FUZZTIME=$(FUZZLONGTIME)

# soak runs issue 20's long load and fault measurements, outside CI's default
# path (make test runs the same tests at trimmed, deterministic sizes). Each
# SOAK_TESTS entry is PACKAGE:RUN-REGEXP, run with TENTACLE_SOAK=1 and -v; add
# a line per measurement. Every entry runs even when one before it failed;
# the output goes to SOAK_LOG too, the tests' figures to SOAK_OUT/*.md (and
# each "figures:" line of the log), and gnuplot draws the plots from the data
# they write. Budget: under 30 minutes in all.
SOAK_OUT          ?= dist/soak
SOAK_LOG          ?= $(SOAK_OUT)/soak.log
SOAK_TESTS        := ./agent/faults/:^TestSoak \
                     ./agent/faults/:^TestHostilePeersOnTheListeningPort$$ \
                     ./cmd/tentacle:^TestLoad
SOAK_APT_PACKAGES := gnuplot-nox
.PHONY: soak
soak:
	@$(MAKE) --no-print-directory deps APT_PACKAGES='$(SOAK_APT_PACKAGES)'
	@rm -rf $(SOAK_OUT) && mkdir -p $(SOAK_OUT)
	@rc=0; for t in $(SOAK_TESTS); do pkg=$${t%%:*}; run=$${t#*:}; \
		echo "soak $$pkg $$run" | tee -a $(SOAK_LOG); \
		( set -o pipefail; TENTACLE_SOAK=1 TENTACLE_SOAK_OUT=$(abspath $(SOAK_OUT)) $(GO) test -count=1 -timeout 30m -v -run "$$run" $$pkg 2>&1 | tee -a $(SOAK_LOG) ) || rc=1; \
	done; \
	if [ -f $(SOAK_OUT)/fanin.dat ]; then gnuplot -e "in='$(SOAK_OUT)/fanin.dat'; out='$(SOAK_OUT)/fanin.png'" scripts/fanin.gp || rc=1; fi; \
	echo "figures:"; grep -h 'figures' $(SOAK_LOG) || true; cat $(SOAK_OUT)/*.md 2>/dev/null; exit $$rc

# demo runs the main job on a throwaway instance under a temp directory; it
# touches nothing machine-wide.
demo: build
	@bash scripts/demo.sh $(BIN)

# bench runs the Go micro-benchmarks, then scripts/bench.sh: the real binary,
# whole process, against ssh/scp and this machine's ceilings, all on loopback.
# It prints a markdown table for docs/benchmarks.md (RUNS, SIZE_MIB, XFER_RUNS
# and IDLE_SECS tune it; see the script).
BENCH_APT_PACKAGES := openssh-server openssh-client
bench: bench-go bench-e2e

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-e2e:
	@$(MAKE) --no-print-directory deps APT_PACKAGES='$(BENCH_APT_PACKAGES)'
	@GO=$(GO) bash scripts/bench.sh

# bench-compare measures BASE (a git revision, default main) against the work
# tree, side by side in one run: binary size, idle agent RSS, package init of
# `tentacle version` and of a script supervisor, echo hi (docs/benchmarks.md).
.PHONY: bench-compare
bench-compare:
	@GO=$(GO) bash scripts/bench-compare.sh $(or $(BASE),main)

# bench-transfer measures uploads and downloads (listening, and polling
# through remote serve) of BASE (a git revision; default main) against the
# work tree, with the TLS, disk and scp ceilings and CPU seconds per GiB, in
# one run (docs/benchmarks.md, "Moving packages"). SIZE_MIB, ROUNDS: see the
# script.
.PHONY: bench-transfer
bench-transfer:
	@$(MAKE) --no-print-directory deps APT_PACKAGES='$(BENCH_APT_PACKAGES)'
	@GO=$(GO) bash scripts/bench-transfer.sh $(or $(BASE),main)

goreleaser: $(GOBIN)/goreleaser

# goreleaser is installed only when missing; the version it reports is
# checked so that an older one on the PATH or in GOBIN is not used silently.
$(GOBIN)/goreleaser:
	@mkdir -p .cache
	flock .cache/goreleaser-install.lock sh -c 'test -x $@ || $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VER)'


# package builds, offline, a snapshot of every release artifact into
# dist/build (archives, deb and rpm, checksums.txt, and checksums.txt.minisig
# when TENTACLE_SIGNING_KEY names a minisign secret key), then adds that
# version to the release feed in dist/feed (packaging/README.md). Older
# versions in the feed stay.
# The binaries built then trust that key's public half by default
# (release.BuiltinPublicKey): TENTACLE_SIGNING_PUBKEY, the RW… line, else the
# second line of the .pub file beside the secret key (minisign -G writes
# minisign.key and minisign.pub); the signature is checked with it, so a
# release never ships a key that does not verify its own feed.
FEED_DIR ?= dist/feed
comma    := ,
# wixl builds the MSI (packaging/msi.sh, a goreleaser build hook); msitools
# has msiinfo; osslsigncode signs it when TENTACLE_CODESIGN_PFX is set.
MSI_APT_PACKAGES := wixl msitools osslsigncode
TENTACLE_SIGNING_PUBKEY ?= $(if $(TENTACLE_SIGNING_KEY),$(shell sed -n 2p '$(basename $(TENTACLE_SIGNING_KEY)).pub' 2>/dev/null))
package: $(GOBIN)/goreleaser
	@$(MAKE) --no-print-directory deps APT_PACKAGES='$(MSI_APT_PACKAGES)'
	@$(GOBIN)/goreleaser --version 2>/dev/null | grep -q 'GitVersion: *$(GORELEASER_VER)$$' || { \
		echo "$(GOBIN)/goreleaser is not $(GORELEASER_VER); remove it and run make package again"; exit 1; }
	@if [ -n "$(TENTACLE_SIGNING_KEY)" ] && [ -z "$(TENTACLE_SIGNING_PUBKEY)" ]; then \
		echo "TENTACLE_SIGNING_KEY is set but its public key is unknown: set TENTACLE_SIGNING_PUBKEY to the RW... line, or put the .pub file beside the key as $(basename $(TENTACLE_SIGNING_KEY)).pub"; exit 1; fi
	TENTACLE_SIGNING_PUBKEY='$(TENTACLE_SIGNING_PUBKEY)' $(GOBIN)/goreleaser release --snapshot --clean --skip=publish$(if $(TENTACLE_SIGNING_KEY),,$(comma)sign)
	$(if $(TENTACLE_SIGNING_KEY),minisign -V -P '$(TENTACLE_SIGNING_PUBKEY)' -m dist/build/checksums.txt -x dist/build/checksums.txt.minisig)
	$(GO) run ./packaging/publishfeed -build dist/build -feed $(FEED_DIR)

# package-test installs what `make package` built for real: the deb in a
# container booted with systemd (install, service, upgrade while a script
# runs, remove, purge), the rpm into a scratch root, lintian and rpmlint, the
# size budget and the feed (packaging/*_test.go), `release list/install` and
# `tentacle upgrade` from that feed served over HTTPS (binary and deb under
# systemd, a script running across, a release that cannot start rolled back,
# the auto-upgrade timer; packaging/upgrade_test.go), the MSI's tables
# (msiinfo), its signing (osslsigncode) and its install, upgrade and
# uninstall with Wine's msiexec, install.sh from that feed (scripts/), and
# the container images goreleaser's hook builds into the second snapshot
# (podman: their archives, `release mirror` and `podman load`; image_test.go).
PACKAGE_APT_PACKAGES := rpm lintian rpmlint minisign dpkg-dev $(MSI_APT_PACKAGES) $(WINE_APT_PACKAGES)
package-test: package
	@$(MAKE) --no-print-directory deps APT_PACKAGES='$(APT_PACKAGES) $(PACKAGE_APT_PACKAGES) $(CONTAINER_APT_PACKAGES)'
	TENTACLE_PACKAGE_DIST=$(CURDIR)/dist/build $(GO) test -count=1 -timeout 25m -v ./packaging/
	TENTACLE_PACKAGE_FEED=$(abspath $(FEED_DIR)) $(GO) test -count=1 -v -run TestInstallShFromThePackagedFeed ./scripts/

clean:
	rm -rf bin dist

# nspawn-rootfs builds, once, the Debian root filesystem in which the
# container tests boot a real systemd (shared recipe:
# systemd-in-a-container.md): the service test (cmd/tentacle), install.sh and
# the Ansible example (scripts/). It lives under the git-ignored .cache and is
# never modified afterwards: the tests boot it with --volatile=overlay. The
# tests run this target themselves (internal/nspawntest), so CI pays the
# build once per cache. Its marker file holds NSPAWN_PACKAGES: changing that
# list rebuilds it on the next run. It is built in a temp directory and
# renamed into place under a lock, so an interrupted build leaves no
# half-made root filesystem that a later run would trust, and two test
# packages starting together build it once.
# curl and minisign: install.sh downloads and verifies with them; ansible-core:
# in the container (debootstrap resolves no virtual packages: python3-cffi-backend
# provides the API python3-cryptography needs). Cost: see docs/benchmarks.md.
NSPAWN_ROOTFS   := .cache/nspawn/bookworm
NSPAWN_PACKAGES := systemd,systemd-sysv,dbus,procps,iproute2,curl,ca-certificates,minisign,ansible-core,python3-cffi-backend
DEBIAN_MIRROR ?= $(or $(shell sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1),http://deb.debian.org/debian)

nspawn-rootfs:
	@mkdir -p $(dir $(NSPAWN_ROOTFS))
	@exec 9>$(NSPAWN_ROOTFS).lock; flock 9; \
	if [ "$$(cat $(NSPAWN_ROOTFS)/.tentacle-rootfs 2>/dev/null)" = "$(NSPAWN_PACKAGES)" ]; then exit 0; fi; \
	$(MAKE) --no-print-directory deps || exit 1; \
	set -e; tmp=$$(mktemp -d $(NSPAWN_ROOTFS).tmp-XXXXXX); trap 'rm -rf "$$tmp" "$$tmp.log"' EXIT; \
	echo "debootstrap bookworm into $(NSPAWN_ROOTFS) from $(DEBIAN_MIRROR) with $(NSPAWN_PACKAGES)"; \
	debootstrap --variant=minbase --include=$(NSPAWN_PACKAGES) \
		bookworm "$$tmp" $(DEBIAN_MIRROR) >"$$tmp.log" 2>&1 || { tail -20 "$$tmp.log"; exit 1; }; \
	echo "$(NSPAWN_PACKAGES)" >"$$tmp/.tentacle-rootfs"; \
	rm -rf $(NSPAWN_ROOTFS); mv -T "$$tmp" $(NSPAWN_ROOTFS)

# image builds, offline, the two container images (packaging/container/README.md)
# from the static release binary and its tentacle-supervisor (beside it as
# /usr/bin/tentacle-supervisor): tentacle:TAG on a minimal Debian made here
# by debootstrap (bash, coreutils, ca-certificates) and tentacle:TAG-static
# FROM scratch, and writes each as an oci-archive under IMAGE_DIR. TAG is the
# binary's version with + made - (an image tag cannot hold +). The binaries
# are goreleaser's linux/amd64 ones when dist/ holds them built from this commit
# with a clean tree, else bin/linux_amd64/tentacle and tentacle-supervisor built with goreleaser's
# flags (CGO_ENABLED=0 -trimpath), which shares Go's build cache with
# `make package`; IMAGE_BINARY names another agent, IMAGE_SUPERVISOR another
# supervisor (default: the one beside IMAGE_BINARY), IMAGE_TAG another tag. podman runs with
# packaging/container/containers.conf (containers-here.md: runc, cgroupfs,
# no default ulimits), never a machine-wide configuration.
CONTAINER_APT_PACKAGES := podman runc
IMAGE_DIR    ?= dist/image
IMAGE_BINARY ?=
IMAGE_SUPERVISOR ?=
IMAGE_TAG    ?=
STATIC_BIN   := bin/linux_amd64/tentacle
image: image-rootfs
	@$(MAKE) --no-print-directory deps APT_PACKAGES='$(CONTAINER_APT_PACKAGES)'
	@set -e; bin='$(IMAGE_BINARY)'; sup='$(IMAGE_SUPERVISOR)'; \
	if [ -z "$$bin" ]; then \
		dist=$$(ls dist/build/tentacle_linux_amd64_v1/bin/tentacle 2>/dev/null || true); \
		dsup=dist/build/supervisor_linux_amd64_v1/libexec/tentacle/tentacle-supervisor; \
		if [ -n "$$dist" ] && [ -x "$$dsup" ] && git diff --quiet HEAD 2>/dev/null && "$$dist" version 2>/dev/null | grep -q "\.$$(git rev-parse --short HEAD)$$"; then \
			bin=$$dist; sup=$$dsup; echo "image: goreleaser's binaries $$bin $$sup"; \
		else \
			CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(STATIC_BIN) ./cmd/tentacle; \
			CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(dir $(STATIC_BIN))tentacle-supervisor ./cmd/tentacle-supervisor; \
			bin=$(STATIC_BIN); sup=$(dir $(STATIC_BIN))tentacle-supervisor; echo "image: built $$bin and $$sup (CGO_ENABLED=0 -trimpath)"; \
		fi; \
	fi; \
	IMAGE_TAG='$(IMAGE_TAG)' CONTAINERS_CONF=$(CURDIR)/packaging/container/containers.conf sh packaging/container/image.sh "$$bin" $(IMAGE_ROOTFS) $(IMAGE_DIR) $$sup

# image-rootfs builds, once per cache, the Debian root filesystem the
# tentacle:TAG image starts from, as nspawn-rootfs does (locked, built in a
# temp directory and renamed into place; its marker holds IMAGE_PACKAGES, so
# changing the list rebuilds it). minbase already has bash and coreutils.
# Documentation, manuals, locales other than C and apt's lists are removed
# (a container reads none of them); /etc/machine-id is removed so that the
# agent keeps its machine key in the state volume (/etc/octopus/machinekey)
# and a container made from a newer image can still read its certificate.
IMAGE_ROOTFS   := .cache/container/bookworm
IMAGE_PACKAGES := ca-certificates
image-rootfs:
	@mkdir -p $(dir $(IMAGE_ROOTFS))
	@exec 9>$(IMAGE_ROOTFS).lock; flock 9; \
	if [ "$$(cat $(IMAGE_ROOTFS)/.tentacle-rootfs 2>/dev/null)" = "$(IMAGE_PACKAGES)" ]; then exit 0; fi; \
	$(MAKE) --no-print-directory deps APT_PACKAGES=debootstrap || exit 1; \
	set -e; tmp=$$(mktemp -d $(IMAGE_ROOTFS).tmp-XXXXXX); trap 'rm -rf "$$tmp" "$$tmp.log"' EXIT; \
	echo "debootstrap bookworm into $(IMAGE_ROOTFS) from $(DEBIAN_MIRROR) with $(IMAGE_PACKAGES)"; \
	debootstrap --variant=minbase --include=$(IMAGE_PACKAGES) \
		bookworm "$$tmp" $(DEBIAN_MIRROR) >"$$tmp.log" 2>&1 || { tail -20 "$$tmp.log"; exit 1; }; \
	rm -rf "$$tmp"/usr/share/doc/* "$$tmp"/usr/share/man/* "$$tmp"/usr/share/info/* "$$tmp"/usr/share/locale/* \
		"$$tmp"/var/lib/apt/lists/* "$$tmp"/var/cache/apt/*.bin "$$tmp"/var/cache/apt/archives/*.deb "$$tmp"/var/log/*.log \
		"$$tmp"/etc/machine-id "$$tmp"/var/lib/dbus/machine-id; \
	echo "$(IMAGE_PACKAGES)" >"$$tmp/.tentacle-rootfs"; \
	rm -rf $(IMAGE_ROOTFS); mv -T "$$tmp" $(IMAGE_ROOTFS)
