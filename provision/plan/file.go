// Package plan is `tentacle provision`: a declared machine state (a provision
// file, or the same settings from flags or environment variables) turned
// into steps that each read what is there, plan the difference, and apply
// it. A second run with the same file changes nothing.
package plan

// File is a provision file: the whole declared state of one machine.
//
// Every field has a yaml tag in kebab-case; unknown keys and wrong types are
// refused with the line and column (Parse). String values may use ${NAME}
// to take an environment variable; secrets must (see Secret).
type File struct {
	// Release, when set, installs the newest release of the feed that
	// matches Version before anything else.
	Release *Release `yaml:"release,omitempty"`
	// Instances are the Tentacle instances on this machine.
	Instances []Instance `yaml:"instances"`
	// AllowPlaintextSecrets lets a secret be written in the file itself
	// instead of ${ENV} or a *-file key: the user insisting.
	AllowPlaintextSecrets bool `yaml:"allow-plaintext-secrets,omitempty"`
}

// Release is the release step: which feed and which versions.
type Release struct {
	// Feed is the feed's index URL (or a local directory).
	Feed string `yaml:"feed"`
	// Version is a constraint such as ">= 1.4, < 2" or "1.4.2"; empty is the newest.
	Version string `yaml:"version,omitempty"`
	// PublicKey is the minisign public key the release must be signed with.
	PublicKey string `yaml:"public-key,omitempty"`
	// Target is the binary to replace; default: the running binary.
	Target string `yaml:"target,omitempty"`
}

// Instance is one Tentacle instance and everything about it.
type Instance struct {
	// Name is the instance name (default Tentacle).
	Name string `yaml:"name"`
	// Config is the configuration file; default <root>/<name>/tentacle.config
	// (the packages' layout, /etc/octopus/<name>/tentacle.config).
	Config string `yaml:"config,omitempty"`
	// Home is the home directory; default: the configuration file's directory.
	Home string `yaml:"home,omitempty"`
	// App is the default directory applications are deployed to.
	App string `yaml:"app,omitempty"`
	// Listen makes a listening Tentacle; Polling a polling one. Exactly one.
	Listen  *Listen  `yaml:"listen,omitempty"`
	Polling *Polling `yaml:"polling,omitempty"`
	// Trust are server thumbprints to trust, besides the one registration adds.
	Trust []string `yaml:"trust,omitempty"`
	// Proxy is the proxy the Tentacle uses to reach the server (polling
	// connections and registration) and for web requests.
	Proxy *Proxy `yaml:"proxy,omitempty"`
	// Certificate: absent means generate one if there is none.
	Certificate *Certificate `yaml:"certificate,omitempty"`
	// Firewall rules that let the server reach a listening Tentacle.
	Firewall *Firewall `yaml:"firewall,omitempty"`
	// Registration with the Octopus Server.
	Registration *Registration `yaml:"registration,omitempty"`
	// Service is the OS service (systemd unit or Windows service).
	Service *Service `yaml:"service,omitempty"`
}

// Listen is a listening Tentacle's port and address.
type Listen struct {
	// Port default 10933.
	Port int `yaml:"port,omitempty"`
	// IP is the address to listen on; default any.
	IP string `yaml:"ip,omitempty"`
}

// Polling is a polling Tentacle.
type Polling struct {
	// Connections is the number of connections to each server; default 1
	// for a target, max(5, CPUs) for a worker, as register-with does.
	Connections int `yaml:"connections,omitempty"`
}

// Proxy is a proxy host or the system's.
type Proxy struct {
	// UseDefault uses the system proxy (the environment on Linux).
	UseDefault bool   `yaml:"use-default,omitempty"`
	Host       string `yaml:"host,omitempty"`
	Port       int    `yaml:"port,omitempty"`
	Username   string `yaml:"username,omitempty"`
	Password   Secret `yaml:"password,omitempty"`
}

// Certificate is the Tentacle's own certificate.
type Certificate struct {
	// PFX imports this file (a PFX, or new-certificate's base64 text)
	// instead of generating a certificate.
	PFX string `yaml:"pfx,omitempty"`
	// Password is the PFX's password.
	Password Secret `yaml:"password,omitempty"`
}

// Firewall are the rules for the listening port.
type Firewall struct {
	// Host opens the port in this machine's firewall.
	Host *HostFirewall `yaml:"host,omitempty"`
	// AWS opens the port in EC2 security groups.
	AWS *AWSFirewall `yaml:"aws,omitempty"`
	// Azure opens the port in a network security group.
	Azure *AzureFirewall `yaml:"azure,omitempty"`
}

// Rule is what every firewall rule shares.
type Rule struct {
	// Name of the rule; default "Octopus Deploy Tentacle".
	Name string `yaml:"name,omitempty"`
	// Sources are the networks allowed (CIDR or address); default anywhere.
	Sources []string `yaml:"sources,omitempty"`
}

// HostFirewall is the OS firewall.
type HostFirewall struct {
	Rule `yaml:",inline"`
	// Backend: auto (default), nftables, iptables, ufw, firewalld, windows.
	Backend string `yaml:"backend,omitempty"`
}

// AWSFirewall is a rule in EC2 security groups.
type AWSFirewall struct {
	Rule `yaml:",inline"`
	// Self uses this instance's own security groups (IMDSv2).
	Self           bool     `yaml:"self,omitempty"`
	SecurityGroups []string `yaml:"security-groups,omitempty"`
	Region         string   `yaml:"region,omitempty"`
	Profile        string   `yaml:"profile,omitempty"`
}

// AzureFirewall is a rule in a network security group.
type AzureFirewall struct {
	Rule          `yaml:",inline"`
	Subscription  string `yaml:"subscription"`
	ResourceGroup string `yaml:"resource-group"`
	NSG           string `yaml:"nsg"`
	// Priority of a new rule, 100-4096; default the first free one.
	Priority int `yaml:"priority,omitempty"`
}

// Registration is the machine on the Octopus Server.
type Registration struct {
	// Server is the Octopus Server's URL.
	Server string `yaml:"server"`
	// APIKey must be ${ENV} (or use APIKeyFile), unless
	// allow-plaintext-secrets is set.
	APIKey Secret `yaml:"api-key,omitempty"`
	// APIKeyFile is a file holding the API key.
	APIKeyFile  string `yaml:"api-key-file,omitempty"`
	BearerToken Secret `yaml:"bearer-token,omitempty"`
	Username    string `yaml:"username,omitempty"`
	Password    Secret `yaml:"password,omitempty"`
	// IgnoreSSLErrors accepts any certificate from the server's REST API.
	IgnoreSSLErrors bool   `yaml:"ignore-ssl-errors,omitempty"`
	Space           string `yaml:"space,omitempty"`
	// As is "target" (default; register-with) or "worker" (register-worker).
	As string `yaml:"as,omitempty"`
	// Name on the server; default this host's name.
	Name string `yaml:"name,omitempty"`
	// Environments, Roles, Tenants, TenantTags: targets.
	Environments []string `yaml:"environments,omitempty"`
	Roles        []string `yaml:"roles,omitempty"`
	Tenants      []string `yaml:"tenants,omitempty"`
	TenantTags   []string `yaml:"tenant-tags,omitempty"`
	// TenantedDeploymentParticipation is Untenanted, TenantedOrUntenanted or Tenanted.
	TenantedDeploymentParticipation string `yaml:"tenanted-deployment-participation,omitempty"`
	// WorkerPools: workers.
	WorkerPools []string `yaml:"worker-pools,omitempty"`
	Policy      string   `yaml:"policy,omitempty"`
	// Force replaces a machine of the same name registered with another
	// certificate (a rebuilt machine); without it that is refused.
	Force bool `yaml:"force,omitempty"`
	// CommsStyle is TentaclePassive (listening) or TentacleActive (polling);
	// default: what the instance is (listen or polling). Given, it must agree.
	CommsStyle string `yaml:"comms-style,omitempty"`
	// PublicHostName is the name the server dials (listening); default this host's name.
	PublicHostName string `yaml:"public-host-name,omitempty"`
	// TentacleCommsPort is the port the server dials (listening), when it
	// differs from the listen port (a container's published port).
	TentacleCommsPort int `yaml:"tentacle-comms-port,omitempty"`
	// ServerCommsAddress is the polling endpoint, e.g. https://octopus.example:10943/
	// (polling); default the server's host on port ServerCommsPort.
	ServerCommsAddress string `yaml:"server-comms-address,omitempty"`
	// ServerCommsPort is the server's polling port; default 10943.
	ServerCommsPort int `yaml:"server-comms-port,omitempty"`
	// ServerProxy is a proxy defined on the server that it uses to reach a
	// listening Tentacle, by name.
	ServerProxy string `yaml:"server-proxy,omitempty"`
}

// Service is the OS service.
type Service struct {
	// Install (default true when the key is present) installs and enables it.
	Install *bool `yaml:"install,omitempty"`
	// Start (default true) starts it and waits until the agent serves.
	Start *bool `yaml:"start,omitempty"`
	// Username is the account it runs as; Password is Windows only.
	Username string `yaml:"username,omitempty"`
	Password Secret `yaml:"password,omitempty"`
	// AutoUpgrade installs the auto-upgrade timer (issue 15).
	AutoUpgrade bool `yaml:"auto-upgrade,omitempty"`
}

// Secret is a string that must not sit in the file in plain text: write
// ${NAME} for an environment variable, or use the matching *-file key.
type Secret string

// Comms styles, as the registration's comms-style key spells them.
const (
	StyleListening = "TentaclePassive"
	StylePolling   = "TentacleActive"
)

// Registration kinds, as the registration's as key spells them.
const (
	AsTarget = "target"
	AsWorker = "worker"
)

// Bool is a *bool for the optional switches of the file.
func Bool(b bool) *bool { return &b }

// enabled is an optional switch that defaults to on.
func enabled(b *bool) bool { return b == nil || *b }
