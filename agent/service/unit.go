package service

import (
	_ "embed"
	"fmt"
	"path"
	"strings"
	"sync"
	"text/template"
)

//go:embed tentacle.service.tmpl
var unitTemplateText string

var unitTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("unit").Parse(unitTemplateText))
})

// Scope is where a systemd unit lives and which manager runs it.
type Scope int

const (
	// SystemScope is /etc/systemd/system and the system manager, as upstream.
	SystemScope Scope = iota
	// UserScope is ~/.config/systemd/user and the invoking user's manager
	// (`systemctl --user`): a rootless instance run by a non-root user.
	UserScope
)

// SystemUnitDir is where upstream writes its unit.
const SystemUnitDir = "/etc/systemd/system"

// UnitOptions are what the unit text depends on besides the Spec.
type UnitOptions struct {
	Scope Scope
	// SystemdVersion selects directives the running systemd understands;
	// 0 (unknown) means Debian 12's 252.
	SystemdVersion int
}

// unitData fills tentacle.service.tmpl.
type unitData struct {
	UnitName, Description, User, ExecStart, WantedBy string
	After, Wants                                     []string
	ExponentialBackoff, OOMPolicy                    bool
}

// ExecArgs are the agent's arguments in a systemd unit, as upstream: the
// instance by name, or a rootless instance by its configuration file. An
// agent running as another user than root cannot read the machine-wide
// instance index (root's, on purpose), so its unit names the configuration
// file as well; the instance keeps its name.
func ExecArgs(s Spec) []string {
	switch {
	case s.Rootless():
		return []string{"run", "--config=" + s.ConfigPath, "--noninteractive"}
	case s.runsAsOtherUser():
		return []string{"run", "--instance=" + s.Instance, "--config=" + s.ConfigPath, "--noninteractive"}
	}
	return []string{"run", "--instance=" + s.Instance, "--noninteractive"}
}

// RenderUnit returns the unit file text for s.
func RenderUnit(s Spec, o UnitOptions) (string, error) {
	if !path.IsAbs(s.Executable) {
		return "", fmt.Errorf("the service needs the absolute path of the tentacle binary, not %q", s.Executable)
	}
	if s.Rootless() && !path.IsAbs(s.ConfigPath) {
		return "", fmt.Errorf("the service needs the absolute path of the configuration file, not %q", s.ConfigPath)
	}
	version := o.SystemdVersion
	if version == 0 {
		version = 252
	}
	d := unitData{
		UnitName:           UnitName(s.Instance),
		Description:        Description,
		WantedBy:           "multi-user.target",
		ExponentialBackoff: version >= 254, // RestartSteps= and RestartMaxDelaySec= arrived in 254
		OOMPolicy:          version >= 243,
	}
	args := append([]string{s.Executable}, ExecArgs(s)...)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = quoteExecArg(a)
	}
	d.ExecStart = strings.Join(quoted, " ")
	if o.Scope == UserScope {
		// A user manager runs everything as its user; User= is refused
		// there, and multi-user.target does not exist.
		d.WantedBy = "default.target"
	} else {
		d.User = s.Username
		if d.User == "" {
			d.User = "root"
		}
		if strings.ContainsAny(d.User, " \t\n\"'\\%$") {
			return "", userf("The user name %q cannot be used in a systemd unit. Pass --username with a plain account name.", d.User)
		}
	}
	if s.DependOn != "" {
		dep := DependencyUnit(s.DependOn)
		if strings.ContainsAny(dep, " \t\n\"'\\%$") {
			return "", userf("--dependOn %q is not a systemd unit name.", s.DependOn)
		}
		// Ordered after and pulled in with the dependency, but not stopped
		// with it (Wants=, not Requires=): the agent's scripts may be what
		// restarts it.
		d.After = append(d.After, dep)
		d.Wants = append(d.Wants, dep)
	}
	var b strings.Builder
	if err := unitTemplate().Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// DependencyUnit is a --dependOn value as a unit name: "docker" means
// docker.service; a name with a unit suffix is kept.
func DependencyUnit(name string) string {
	for _, suffix := range []string{".service", ".socket", ".target", ".mount", ".device", ".path", ".timer", ".slice", ".scope", ".swap", ".automount"} {
		if strings.HasSuffix(name, suffix) {
			return name
		}
	}
	return name + ".service"
}

// quoteExecArg writes one ExecStart argument so that systemd passes it
// through unchanged: "%" and "$" would otherwise be specifier and variable
// expansion, and whitespace, quotes, backslashes and ";" need quoting.
func quoteExecArg(a string) string {
	esc := strings.NewReplacer("%", "%%", "$", "$$").Replace(a)
	if a != "" && a != ";" && !strings.ContainsAny(a, " \t\n\"'\\") {
		return esc
	}
	esc = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(esc)
	return `"` + esc + `"`
}
