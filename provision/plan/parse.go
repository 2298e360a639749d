package plan

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/tentacle-go/tentacle/agent/config"
)

// FileError is a provision file that cannot be used: Msg names the file,
// the line and column, and the field.
type FileError struct{ Msg string }

func (e *FileError) Error() string { return e.Msg }

// Parse reads a provision file. Unknown keys, wrong types and values that
// cannot work are refused with the line, the column and the field; name is
// the file's name for those messages. ${NAME} references are kept as they
// are (Resolve expands them), so that Marshal writes back what was read.
func Parse(name string, data []byte) (*File, error) {
	if isBlankYAML(data) {
		return nil, &FileError{Msg: fmt.Sprintf("%s is empty: declare at least one instance (the README's provision section has examples).", name)}
	}
	var f File
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.Strict()); err != nil {
		return nil, &FileError{Msg: decodeErrorMessage(name, data, err)}
	}
	if err := f.validate(); err != nil {
		return nil, locate(name, data, err)
	}
	return &f, nil
}

// Marshal writes f as a provision file that Parse reads back to the same
// File. Secrets are written as they are held: keep them as ${NAME}.
func Marshal(f *File) ([]byte, error) {
	return yaml.MarshalWithOptions(f, yaml.Indent(2), yaml.IndentSequence(true))
}

// fieldError is a validation failure at a YAML path such as
// $.instances[0].listen.port; locate turns it into line:column.
type fieldError struct {
	path, msg string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

func fieldErrorf(path, format string, args ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, args...)}
}

// locate prefixes a fieldError with file:line:column and the field's name.
func locate(name string, data []byte, err error) error {
	var fe *fieldError
	if !errors.As(err, &fe) {
		return err
	}
	field := strings.TrimPrefix(fe.path, "$.")
	where := name
	if len(data) > 0 {
		if pos := position(data, fe.path); pos != "" {
			where += ":" + pos
		}
	}
	return &FileError{Msg: fmt.Sprintf("%s: %s: %s", where, field, fe.msg)}
}

// position is line:column of the node at a YAML path, or of the closest
// parent that exists (a missing key is reported where it belongs).
func position(data []byte, path string) string {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return ""
	}
	for p := path; p != "$" && p != ""; p = parentPath(p) {
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		node, err := yp.FilterFile(file)
		if err != nil || node == nil || node.GetToken() == nil {
			continue
		}
		t := node.GetToken()
		return fmt.Sprintf("%d:%d", t.Position.Line, t.Position.Column)
	}
	return ""
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		return p[:strings.LastIndex(p, "[")]
	}
	if i := strings.LastIndex(p, "."); i > 0 {
		return p[:i]
	}
	return ""
}

var (
	decodeErrorPosition = regexp.MustCompile(`^\[(\d+):(\d+)\] (.*)$`)
	goFieldPhrase       = regexp.MustCompile(`into Go struct field \S+ of type (\S+)`)
	keyBefore           = regexp.MustCompile(`([A-Za-z0-9_-]+):\s*$`)
)

// decodeErrorMessage is go-yaml's error as file:line:column, the key on
// that line, and what was wrong, without Go's type names.
func decodeErrorMessage(name string, data []byte, err error) string {
	msg := oneLine(yaml.FormatError(err, false, false))
	m := decodeErrorPosition.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Sprintf("%s: %s. Fix it (the README's provision section lists every key) and run again.", name, msg)
	}
	what := goFieldPhrase.ReplaceAllString(m[3], "into $1")
	key := ""
	var line, col int
	fmt.Sscanf(m[1], "%d", &line)
	fmt.Sscanf(m[2], "%d", &col)
	if lines := strings.Split(string(data), "\n"); line >= 1 && line <= len(lines) {
		text := lines[line-1]
		if col >= 1 && col-1 <= len(text) {
			text = text[:col-1]
		}
		// The key is the last "name:" before the column (block or flow style).
		if k := keyBefore.FindStringSubmatch(text); k != nil {
			key = k[1] + ": "
		} else if k, _, ok := strings.Cut(strings.TrimLeft(strings.TrimSpace(lines[line-1]), "- "), ":"); ok && !strings.ContainsAny(k, " {[") {
			key = k + ": "
		}
	}
	return fmt.Sprintf("%s:%s:%s: %s%s. Fix that line (the README's provision section lists every key) and run again.", name, m[1], m[2], key, what)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

var reference = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Resolve returns a copy of f with every ${NAME} replaced by the
// environment variable's value. A variable that is not set is an error
// naming the field, so a missing secret never becomes an empty one. name
// and data are the file's, for line numbers (data may be nil).
func Resolve(f *File, getenv func(string) string, name string, data []byte) (*File, error) {
	out := deepCopy(f)
	var firstErr error
	walkStrings(reflect.ValueOf(out).Elem(), "$", func(path string, v reflect.Value) {
		s := v.String()
		if !strings.Contains(s, "${") || firstErr != nil {
			return
		}
		var missing []string
		s = reference.ReplaceAllStringFunc(s, func(ref string) string {
			key := ref[2 : len(ref)-1]
			val := getenv(key)
			if val == "" {
				missing = append(missing, key)
			}
			return val
		})
		if len(missing) > 0 {
			firstErr = locate(name, data, fieldErrorf(path, "the environment variable %s is not set (or empty). Set it in the environment provision runs in.", strings.Join(missing, ", ")))
			return
		}
		v.SetString(s)
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// walkStrings calls fn with every string (and Secret) in v and its YAML path.
func walkStrings(v reflect.Value, path string, fn func(string, reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, fn)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if f.Anonymous && tag == "" {
				walkStrings(v.Field(i), path, fn)
				continue
			}
			walkStrings(v.Field(i), path+"."+tag, fn)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkStrings(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case reflect.String:
		fn(path, v)
	}
}

// deepCopy copies f through its own YAML, which is what f is.
func deepCopy(f *File) *File {
	data, err := Marshal(f)
	if err != nil {
		panic(fmt.Sprintf("provision file does not marshal: %v", err))
	}
	var out File
	if err := yaml.UnmarshalWithOptions(data, &out, yaml.Strict()); err != nil {
		panic(fmt.Sprintf("provision file does not read back: %v", err))
	}
	return &out
}

// validate checks everything that can be checked without the machine or
// the server, so that a broken file stops before the first step.
func (f *File) validate() error {
	if f.Release != nil && strings.TrimSpace(f.Release.Feed) == "" {
		return fieldErrorf("$.release.feed", "the release step needs the feed's URL (or directory).")
	}
	if len(f.Instances) == 0 {
		return fieldErrorf("$.instances", "declare at least one instance, e.g. `instances: [{name: Tentacle, listen: {port: 10933}}]`.")
	}
	seen := map[string]bool{}
	for i := range f.Instances {
		in := &f.Instances[i]
		p := fmt.Sprintf("$.instances[%d]", i)
		name := in.InstanceName()
		if seen[strings.ToLower(name)] {
			return fieldErrorf(p+".name", "instance %s is declared twice; give each instance its own name.", name)
		}
		seen[strings.ToLower(name)] = true
		if err := in.validate(p, f.AllowPlaintextSecrets); err != nil {
			return err
		}
	}
	return nil
}

// InstanceName is the instance's name, Tentacle by default.
func (in *Instance) InstanceName() string {
	if strings.TrimSpace(in.Name) == "" {
		return config.DefaultInstanceName
	}
	return in.Name
}

// IsPolling reports whether the instance polls.
func (in *Instance) IsPolling() bool { return in.Polling != nil }

func (in *Instance) validate(p string, plaintextOK bool) error {
	if strings.ContainsAny(in.InstanceName(), `/\:*?"<>|`) {
		return fieldErrorf(p+".name", "%q cannot be an instance name: it must not contain / \\ : * ? \" < > |.", in.Name)
	}
	if in.Listen != nil && in.Polling != nil {
		return fieldErrorf(p+".polling", "an instance either listens or polls: keep listen or polling, not both.")
	}
	if l := in.Listen; l != nil {
		if l.Port < 0 || l.Port > 65535 {
			return fieldErrorf(p+".listen.port", "%d is not a TCP port: give 1 to 65535 (default 10933).", l.Port)
		}
		if l.IP != "" && !strings.EqualFold(l.IP, "any") && net.ParseIP(strings.Trim(l.IP, "[]")) == nil {
			return fieldErrorf(p+".listen.ip", "%q is not an IP address: give one such as 10.0.0.5 or ::1, or any.", l.IP)
		}
	}
	if pl := in.Polling; pl != nil && pl.Connections != 0 {
		if pl.Connections < config.MinPollingConnectionCount || pl.Connections > config.MaxPollingConnectionCount {
			return fieldErrorf(p+".polling.connections", "%d is out of range: give %d to %d.", pl.Connections, config.MinPollingConnectionCount, config.MaxPollingConnectionCount)
		}
	}
	for j, t := range in.Trust {
		if !strings.Contains(t, "${") {
			if _, err := config.NormalizeThumbprint(t); err != nil {
				return fieldErrorf(fmt.Sprintf("%s.trust[%d]", p, j), "%q is not a thumbprint: give the server's 40 hex digits (Configuration > Thumbprints on the server).", t)
			}
		}
	}
	if px := in.Proxy; px != nil {
		if px.Port < 0 || px.Port > 65535 {
			return fieldErrorf(p+".proxy.port", "%d is not a TCP port.", px.Port)
		}
		if px.Host == "" && (px.Port != 0 || px.Username != "" || px.Password != "") {
			return fieldErrorf(p+".proxy.host", "a proxy port, username or password needs the proxy's host.")
		}
		if err := checkSecret(p+".proxy.password", px.Password, plaintextOK); err != nil {
			return err
		}
	}
	if c := in.Certificate; c != nil {
		if c.Password != "" && c.PFX == "" {
			return fieldErrorf(p+".certificate.password", "a password is for a PFX: give the file with certificate.pfx.")
		}
		if err := checkSecret(p+".certificate.password", c.Password, plaintextOK); err != nil {
			return err
		}
	}
	if fw := in.Firewall; fw != nil {
		if in.IsPolling() {
			return fieldErrorf(p+".firewall", "a polling Tentacle opens no inbound port, so it needs no firewall rule; remove firewall from this instance.")
		}
		if err := in.validateFirewall(p + ".firewall"); err != nil {
			return err
		}
	}
	if r := in.Registration; r != nil {
		if err := r.validate(p+".registration", in.IsPolling(), plaintextOK); err != nil {
			return err
		}
	}
	if s := in.Service; s != nil {
		if err := checkSecret(p+".service.password", s.Password, plaintextOK); err != nil {
			return err
		}
	}
	return nil
}

func (in *Instance) validateFirewall(p string) error {
	fw := in.Firewall
	if fw.Host != nil {
		switch strings.ToLower(fw.Host.Backend) {
		case "", "auto", "nftables", "iptables", "ufw", "firewalld", "windows":
		default:
			return fieldErrorf(p+".host.backend", "%q is not a firewall backend: give auto, nftables, iptables, ufw, firewalld or windows.", fw.Host.Backend)
		}
	}
	if a := fw.AWS; a != nil && !a.Self && len(a.SecurityGroups) == 0 {
		return fieldErrorf(p+".aws", "say which security groups: self: true (this EC2 instance's own) or security-groups: [sg-...].")
	}
	if z := fw.Azure; z != nil {
		if z.Subscription == "" || z.ResourceGroup == "" || z.NSG == "" {
			return fieldErrorf(p+".azure", "an Azure rule needs subscription, resource-group and nsg.")
		}
		if z.Priority != 0 && (z.Priority < 100 || z.Priority > 4096) {
			return fieldErrorf(p+".azure.priority", "%d is out of range: give 100 to 4096, or leave it out for the first free one.", z.Priority)
		}
	}
	return nil
}

var tenantedModes = []string{"Untenanted", "TenantedOrUntenanted", "Tenanted"}

func (r *Registration) validate(p string, polling, plaintextOK bool) error {
	if strings.TrimSpace(r.Server) == "" {
		return fieldErrorf(p+".server", "registration needs the Octopus Server's URL, e.g. server: https://octopus.example.")
	}
	if !strings.Contains(r.Server, "${") {
		if u, err := url.Parse(r.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErrorf(p+".server", "%q is not a server URL: give one such as https://octopus.example.", r.Server)
		}
	}
	creds := 0
	for _, set := range []bool{r.APIKey != "" || r.APIKeyFile != "", r.BearerToken != "", r.Username != "" || r.Password != ""} {
		if set {
			creds++
		}
	}
	if creds == 0 {
		return fieldErrorf(p, "registration needs credentials: api-key: ${OCTOPUS_API_KEY}, api-key-file, bearer-token, or username and password.")
	}
	if creds > 1 || (r.APIKey != "" && r.APIKeyFile != "") {
		return fieldErrorf(p, "give one way to sign in: api-key, api-key-file, bearer-token, or username and password.")
	}
	if (r.Username == "") != (r.Password == "") {
		return fieldErrorf(p+".password", "username and password go together.")
	}
	for _, s := range []struct {
		key string
		val Secret
	}{{"api-key", r.APIKey}, {"bearer-token", r.BearerToken}, {"password", r.Password}} {
		if err := checkSecret(p+"."+s.key, s.val, plaintextOK); err != nil {
			return err
		}
	}
	switch r.As {
	case "", AsTarget:
		if len(r.Environments) == 0 {
			return fieldErrorf(p+".environments", "a deployment target needs at least one environment.")
		}
		if len(r.Roles) == 0 {
			return fieldErrorf(p+".roles", "a deployment target needs at least one role (target tag).")
		}
		if len(r.WorkerPools) > 0 {
			return fieldErrorf(p+".worker-pools", "worker pools are for workers: set as: worker, or remove worker-pools.")
		}
	case AsWorker:
		if len(r.WorkerPools) == 0 {
			return fieldErrorf(p+".worker-pools", "a worker needs at least one worker pool.")
		}
		if len(r.Environments)+len(r.Roles)+len(r.Tenants)+len(r.TenantTags) > 0 || r.TenantedDeploymentParticipation != "" {
			return fieldErrorf(p+".as", "environments, roles and tenants are for deployment targets, not workers: remove them or set as: target.")
		}
	default:
		return fieldErrorf(p+".as", "%q is not target or worker.", r.As)
	}
	if m := r.TenantedDeploymentParticipation; m != "" && !containsFold(tenantedModes, m) {
		return fieldErrorf(p+".tenanted-deployment-participation", "%q is not one of %s.", m, strings.Join(tenantedModes, ", "))
	}
	if r.CommsStyle != "" {
		style, ok := config.ParseCommunicationStyle(r.CommsStyle)
		if !ok || (style != config.StyleTentaclePassive && style != config.StyleTentacleActive) {
			return fieldErrorf(p+".comms-style", "%q is not TentaclePassive (listening) or TentacleActive (polling).", r.CommsStyle)
		}
		if (style == config.StyleTentacleActive) != polling {
			return fieldErrorf(p+".comms-style", "%s does not agree with the instance, which %s; leave comms-style out, or change the instance's listen/polling.", r.CommsStyle, map[bool]string{true: "polls", false: "listens"}[polling])
		}
	}
	if polling && (r.ServerProxy != "" || r.PublicHostName != "" || r.TentacleCommsPort != 0) {
		return fieldErrorf(p+".server-proxy", "server-proxy, public-host-name and tentacle-comms-port are how the server reaches a listening Tentacle; this one polls.")
	}
	if r.TentacleCommsPort < 0 || r.TentacleCommsPort > 65535 {
		return fieldErrorf(p+".tentacle-comms-port", "%d is not a TCP port.", r.TentacleCommsPort)
	}
	if !polling && (r.ServerCommsAddress != "" || r.ServerCommsPort != 0) {
		return fieldErrorf(p+".server-comms-address", "server-comms-address and server-comms-port are for polling Tentacles; this one listens.")
	}
	if r.ServerCommsPort < 0 || r.ServerCommsPort > 65535 {
		return fieldErrorf(p+".server-comms-port", "%d is not a TCP port.", r.ServerCommsPort)
	}
	return nil
}

// checkSecret refuses a secret written in plain text unless the file allows it.
func checkSecret(path string, s Secret, plaintextOK bool) error {
	if s == "" || plaintextOK || reference.MatchString(string(s)) {
		return nil
	}
	return fieldErrorf(path, "secrets are not kept in the file in plain text: write ${NAME} and set the environment variable NAME (or use the *-file key where there is one). To keep it in the file anyway, set allow-plaintext-secrets: true at the top.")
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// isBlankYAML reports whether data holds no document at all.
func isBlankYAML(data []byte) bool { return len(bytes.TrimSpace(data)) == 0 }
