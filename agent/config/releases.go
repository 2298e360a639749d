package config

// An instance's release defaults: the feed `tentacle release` and `tentacle
// upgrade` read, and the minisign public key its checksums.txt must be signed
// with. Upstream upgrades through Octopus Server and has no such keys; they
// are ours (set with `configure --releases-feed/--releases-public-key`).
const (
	KeyReleasesFeed      = "Tentacle.Releases.Feed"
	KeyReleasesPublicKey = "Tentacle.Releases.PublicKey"
)
