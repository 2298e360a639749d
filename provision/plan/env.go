package plan

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// EnvVar is one environment variable `provision --from-env` reads: the
// name upstream's Tentacle container image gives it, and the provision-file
// key it sets (the README lists them from this table).
type EnvVar struct {
	Name, Key, Meaning string
}

// EnvVars are the variables of upstream's container image, in its order.
var EnvVars = []EnvVar{
	{"ServerUrl", "registration.server", "the Octopus Server to register with"},
	{"ServerApiKey", "registration.api-key", "API key (used first when several credentials are set)"},
	{"BearerToken", "registration.bearer-token", "bearer token (when there is no API key)"},
	{"ServerUsername", "registration.username", "user name (when there is neither API key nor token)"},
	{"ServerPassword", "registration.password", "that user's password"},
	{"Space", "registration.space", "the space, by name; default the default space"},
	{"TargetEnvironment", "registration.environments", "comma-separated environments (target)"},
	{"TargetRole", "registration.roles", "comma-separated roles (target)"},
	{"TargetWorkerPool", "registration.worker-pools", "comma-separated worker pools; makes a worker (not with TargetEnvironment/TargetRole)"},
	{"TargetName", "registration.name", "the name on the server; default this host's name"},
	{"TargetTenant", "registration.tenants", "comma-separated tenants"},
	{"TargetTenantTag", "registration.tenant-tags", "comma-separated tenant tags (TagSet/Tag)"},
	{"TargetTenantedDeploymentParticipation", "registration.tenanted-deployment-participation", "Untenanted, TenantedOrUntenanted or Tenanted"},
	{"MachinePolicy", "registration.policy", "the machine policy, by name"},
	{"ServerCommsAddress", "polling + registration.server-comms-address", "the polling endpoint; makes a polling Tentacle"},
	{"ServerPort", "polling + registration.server-comms-port", "the server's polling port; makes a polling Tentacle"},
	{"ListeningPort", "registration.tentacle-comms-port", "the port the server dials (the Tentacle listens on 10933); listening"},
	{"PublicHostNameConfiguration", "registration.public-host-name", "ComputerName (default here), FQDN or Custom; PublicIp is refused"},
	{"CustomPublicHostName", "registration.public-host-name", "the host name, with PublicHostNameConfiguration=Custom"},
	{"PollingConnectionCount", "polling.connections", "connections to each server (polling)"},
	{"ACCEPT_EULA", "(none)", "accepted and ignored: this Tentacle has no EULA to accept"},
}

// EnvInstance and EnvApplications are the instance --from-env declares and
// its application folder, as upstream's container image has them.
const (
	EnvInstance     = "Tentacle"
	EnvApplications = "/home/Octopus/Applications"
)

// FromEnv builds the provision file that upstream's container would
// converge to from its environment variables: one instance named
// Tentacle, its application directory /home/Octopus/Applications,
// registered with --force as upstream's image does. Secrets stay
// ${NAME} references, so the file can be written out without them.
func FromEnv(getenv func(string) string) (*File, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	in := Instance{Name: EnvInstance, App: EnvApplications}
	reg := &Registration{
		Server: get("ServerUrl"), Space: get("Space"), Name: get("TargetName"),
		Environments: SplitList(get("TargetEnvironment")), Roles: SplitList(get("TargetRole")),
		WorkerPools: SplitList(get("TargetWorkerPool")), Tenants: SplitList(get("TargetTenant")),
		TenantTags:                      SplitList(get("TargetTenantTag")),
		TenantedDeploymentParticipation: get("TargetTenantedDeploymentParticipation"),
		Policy:                          get("MachinePolicy"),
		Force:                           true,
	}
	if reg.Server == "" {
		return nil, &FileError{Msg: "--from-env: ServerUrl is not set: give the Octopus Server's URL, e.g. ServerUrl=https://octopus.example."}
	}
	switch {
	case get("ServerApiKey") != "":
		reg.APIKey = "${ServerApiKey}"
	case get("BearerToken") != "":
		reg.BearerToken = "${BearerToken}"
	case get("ServerUsername") != "" && get("ServerPassword") != "":
		reg.Username, reg.Password = get("ServerUsername"), "${ServerPassword}"
	default:
		return nil, &FileError{Msg: "--from-env: no credentials: set ServerApiKey, BearerToken, or ServerUsername and ServerPassword."}
	}
	if len(reg.WorkerPools) > 0 {
		reg.As = AsWorker
		if len(reg.Environments)+len(reg.Roles) > 0 {
			return nil, &FileError{Msg: "--from-env: TargetEnvironment and TargetRole cannot be used with TargetWorkerPool: a worker has pools, a target has environments and roles."}
		}
	}
	port := func(name string) (int, error) {
		v := get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return 0, &FileError{Msg: fmt.Sprintf("--from-env: %s=%q is not a TCP port (1 to 65535).", name, v)}
		}
		return n, nil
	}
	commsAddress := get("ServerCommsAddress")
	serverPort, err := port("ServerPort")
	if err != nil {
		return nil, err
	}
	if commsAddress != "" || serverPort != 0 {
		in.Polling = &Polling{}
		reg.ServerCommsAddress, reg.ServerCommsPort = commsAddress, serverPort
		if v := get("PollingConnectionCount"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, &FileError{Msg: fmt.Sprintf("--from-env: PollingConnectionCount=%q is not a whole number.", v)}
			}
			in.Polling.Connections = n
		}
	} else {
		in.Listen = &Listen{Port: 10933}
		if reg.TentacleCommsPort, err = port("ListeningPort"); err != nil {
			return nil, err
		}
		if reg.TentacleCommsPort == in.Listen.Port {
			reg.TentacleCommsPort = 0
		}
		if reg.PublicHostName, err = publicHostName(get("PublicHostNameConfiguration"), get("CustomPublicHostName")); err != nil {
			return nil, err
		}
	}
	in.Registration = reg
	f := &File{Instances: []Instance{in}}
	if err := f.validate(); err != nil {
		return nil, &FileError{Msg: "--from-env: " + err.Error()}
	}
	return f, nil
}

// publicHostName follows PublicHostNameConfiguration; "" lets the
// registration use this host's name.
func publicHostName(mode, custom string) (string, error) {
	switch strings.ToLower(mode) {
	case "", "computername":
		return "", nil
	case "fqdn":
		host, err := os.Hostname()
		if err != nil {
			return "", err
		}
		if cname, err := net.LookupCNAME(host); err == nil && cname != "" {
			return strings.TrimSuffix(cname, "."), nil
		}
		return host, nil
	case "custom":
		if custom == "" {
			return "", &FileError{Msg: "--from-env: PublicHostNameConfiguration=Custom needs CustomPublicHostName."}
		}
		return custom, nil
	case "publicip":
		return "", &FileError{Msg: "--from-env: PublicHostNameConfiguration=PublicIp would ask an outside service for this machine's address, which this Tentacle does not do: set PublicHostNameConfiguration=Custom and CustomPublicHostName to the address the server should dial."}
	}
	return "", &FileError{Msg: fmt.Sprintf("--from-env: PublicHostNameConfiguration=%q is not ComputerName, FQDN or Custom.", mode)}
}

// SplitList splits a comma-separated value as upstream's image does (on
// commas), dropping the blanks around each item and empty items.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
