package main

import (
	"github.com/tentacle-go/tentacle/agent/config"
)

// CLI is the whole command line. Names, aliases and option spellings are
// upstream's (tentacle-surface §2); matching is case-insensitive (args.go).
type CLI struct {
	Globals

	CreateInstance            CreateInstanceCmd            `cmd:"" name:"create-instance" help:"Registers a new instance of the Tentacle service" group:"Instances"`
	DeleteInstance            DeleteInstanceCmd            `cmd:"" name:"delete-instance" help:"Deletes an instance of the Tentacle service (the index entry only; its files and service stay)" group:"Instances"`
	ListInstances             ListInstancesCmd             `cmd:"" name:"list-instances" help:"Lists all installed Tentacle instances" group:"Instances"`
	Configure                 ConfigureCmd                 `cmd:"" name:"configure" help:"Sets Tentacle settings such as the port number and thumbprints" group:"Configuration"`
	ShowConfiguration         ShowConfigurationCmd         `cmd:"" name:"show-configuration" help:"Outputs the Tentacle configuration" group:"Configuration"`
	SetPollingConnectionCount SetPollingConnectionCountCmd `cmd:"" name:"set-polling-connection-count" help:"Sets the number of polling connections this Tentacle opens to each Octopus Server it polls" group:"Configuration"`
	UpdateTrust               UpdateTrustCmd               `cmd:"" name:"update-trust" help:"Replaces the trusted Octopus Server thumbprint of any matching polling or listening registrations with a new thumbprint to trust" group:"Configuration"`
	ClearTrustedServers       ClearTrustedServersCmd       `cmd:"" name:"clear-trusted-servers" help:"Clears trusted servers in the Tentacle Configuration" group:"Configuration"`
	ServerComms               ServerCommsCmd               `cmd:"" name:"server-comms" help:"Configure how the Tentacle communicates with an Octopus Server" group:"Configuration"`
	PollServer                PollServerCmd                `cmd:"" name:"poll-server" help:"Configures an Octopus Server that this Tentacle will poll" group:"Configuration"`
	RegisterWith              RegisterWithCmd              `cmd:"" name:"register-with" help:"Registers this machine as a deployment target with an Octopus Server" group:"Registration"`
	RegisterWorker            RegisterWorkerCmd            `cmd:"" name:"register-worker" help:"Registers this machine as a worker with an Octopus Server" group:"Registration"`
	DeregisterFrom            DeregisterFromCmd            `cmd:"" name:"deregister-from" help:"Deregisters this deployment target from an Octopus Server" group:"Registration"`
	DeregisterWorker          DeregisterWorkerCmd          `cmd:"" name:"deregister-worker" help:"Deregisters this worker from an Octopus Server" group:"Registration"`
	Proxy                     ProxyCmd                     `cmd:"" name:"proxy" help:"Configure the HTTP proxy used by Octopus" group:"Configuration"`
	PollingProxy              PollingProxyCmd              `cmd:"" name:"polling-proxy" help:"Configure the HTTP proxy used by polling Tentacles to reach the Octopus Server" group:"Configuration"`
	NewCertificate            NewCertificateCmd            `cmd:"" name:"new-certificate" help:"Creates and installs a new certificate for this Tentacle" group:"Certificates"`
	ImportCertificate         ImportCertificateCmd         `cmd:"" name:"import-certificate" help:"Replace the certificate that Tentacle uses to authenticate itself" group:"Certificates"`
	ShowThumbprint            ShowThumbprintCmd            `cmd:"" name:"show-thumbprint" help:"Show the thumbprint of this Tentacle's certificate" group:"Certificates"`
	Agent                     AgentCmd                     `cmd:"" name:"agent" aliases:"run" help:"Starts the Tentacle agent: listens and polls as configured until stopped" group:"Agent"`
	Service                   ServiceCmd                   `cmd:"" name:"service" help:"Installs, removes, starts and stops the Tentacle as a service (systemd or Windows)" group:"Agent"`
	Livez                     LivezCmd                     `cmd:"" name:"livez" help:"Liveness probe: exits 0 only if the agent touched its heartbeat within --max-age seconds" group:"Agent"`
	Container                 ContainerCmd                 `cmd:"" name:"container" help:"The container image's entrypoint: provision --from-env, then the agent, as PID 1" group:"Agent"`
	Remote                    RemoteCmd                    `cmd:"" name:"remote" help:"Drive a Tentacle as an Octopus Server would: run scripts, move files" group:"Agent"`
	Provision                 ProvisionCmd                 `cmd:"" name:"provision" help:"Converges this machine to a declared state (instances, certificate, firewall, registration, service) from a file, the environment or flags; idempotent" group:"Instances"`
	Setup                     SetupCmd                     `cmd:"" name:"setup" help:"Sets up a Tentacle by asking questions (what /opt/octopus/tentacle/configure-tentacle.sh runs), then applies the answers as a provision file" group:"Instances"`
	Doctor                    DoctorCmd                    `cmd:"" name:"doctor" help:"Checks why this Tentacle cannot talk to its Octopus Servers, and says what to do" group:"Agent"`
	Firewall                  FirewallCmd                  `cmd:"" name:"firewall" help:"Opens the Tentacle's port in the machine's firewall, an AWS security group or an Azure network security group" group:"Firewall"`
	Release                   ReleaseCmd                   `cmd:"" name:"release" help:"Lists, downloads (verified) and mirrors releases of tentacle from a release feed" group:"Other"`
	Upgrade                   UpgradeCmd                   `cmd:"" name:"upgrade" help:"Installs a release from a feed and restarts the agents running this binary onto it, rolling back if one does not come healthy" group:"Other"`
	Diag                      DiagCmd                      `cmd:"" name:"diag" help:"Tools for debugging the protocol: decode and encode captured messages" group:"Other"`
	Version                   VersionCmd                   `cmd:"" name:"version" help:"Show the Tentacle version information" group:"Other"`
	Help                      HelpCmd                      `cmd:"" name:"help" aliases:"h,?" help:"Prints this help text" group:"Other"`
	Completion                CompletionCmd                `cmd:"" name:"completion" help:"Prints a shell completion script (bash, zsh or fish)" group:"Other"`
}

// Globals are upstream's common options. They are accepted everywhere so
// that existing scripts keep working; most are deprecated upstream too.
type Globals struct {
	NoLogo           bool   `name:"nologo" hidden:"" help:"Deprecated, no effect"`
	NoConsoleLogging bool   `name:"noconsolelogging" hidden:"" help:"Don't log informational messages to the console (stdout); errors still go to stderr (agent only)"`
	Console          bool   `name:"console" hidden:"" help:"Run in the foreground (agent only)"`
	NonInteractive   bool   `name:"noninteractive" hidden:"" help:"Do not prompt; wait for a signal to stop (agent only)"`
	MonitorMutex     string `name:"monitorMutex" hidden:"" help:"Windows Tentacle Manager only; ignored"`
}

// InstanceFlags select the instance a command works on (tentacle-surface §1.3).
type InstanceFlags struct {
	Instance string `name:"instance" help:"Name of the instance to use" placeholder:"NAME"`
	Config   string `name:"config" help:"Configuration file to use" placeholder:"PATH"`
}

// selection resolves the instance.
func (f *InstanceFlags) selection(e *Env) (config.Selection, error) {
	return e.Index().Select(f.Instance, f.Config, e.Cwd)
}

// load reads the selected instance's configuration.
func (f *InstanceFlags) load(e *Env) (config.Selection, *config.Settings, error) {
	sel, err := f.selection(e)
	if err != nil {
		return sel, nil, err
	}
	s, err := config.LoadSettings(sel.ConfigPath)
	return sel, s, err
}

// update changes the selected instance's configuration under its lock and
// says what happened: the restart advice when something changed, and that
// nothing did otherwise (so a second identical run is visibly a no-op).
func (f *InstanceFlags) update(e *Env, fn func(*config.Settings) error) error {
	sel, err := f.selection(e)
	if err != nil {
		return err
	}
	changed, err := config.Update(sel.ConfigPath, fn)
	if err != nil {
		return err
	}
	reportChanged(e, sel, changed)
	return nil
}

func reportChanged(e *Env, sel config.Selection, changed bool) {
	if !changed {
		e.Infof("No changes were made: the configuration already matches.")
		return
	}
	if sel.Rootless {
		e.Warnf("These changes require a restart of the service.")
	} else {
		e.Warnf("These changes require a restart of the Tentacle.")
	}
}

// formatFlag is upstream's --format=text|json.
type formatFlag struct {
	Format string `name:"format" default:"text" help:"The format of the output (text,json). Defaults to text." placeholder:"FORMAT"`
}

func (f formatFlag) json() (bool, error) {
	switch {
	case equalFold(f.Format, "json"):
		return true, nil
	case equalFold(f.Format, "text") || f.Format == "":
		return false, nil
	}
	return false, config.Userf("The format '%s' is not supported. Try text or json.", f.Format)
}
