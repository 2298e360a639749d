package plan

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
)

// instancePaths are where an instance's files are.
type instancePaths struct {
	name, config, home string
}

func (r *run) paths(in *Instance) instancePaths {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(r.opts.Cwd, p)
	}
	p := instancePaths{name: in.InstanceName(), config: abs(in.Config), home: abs(in.Home)}
	if in.Config == "" {
		p.config = filepath.Join(r.opts.Root, p.name, "tentacle.config")
	}
	if in.Home == "" {
		p.home = filepath.Dir(p.config)
	}
	return p
}

func (r *run) machineKey() config.MachineKey { return config.DefaultMachineKey(r.opts.Root) }

// instanceSteps are one instance's steps, in order.
func (r *run) instanceSteps(in *Instance, st *InstanceState) []step {
	p := r.paths(in)
	st.ConfigPath, st.Home = p.config, p.home
	name := p.name
	steps := []step{
		{"instance", name, func(ctx context.Context) (*planned, error) { return r.planInstance(p) }},
		{"certificate", name, func(ctx context.Context) (*planned, error) { return r.planCertificate(in, p) }},
		{"configure", name, func(ctx context.Context) (*planned, error) { return r.planConfigure(in, p, st) }},
	}
	if fw := in.Firewall; fw != nil {
		if fw.Host != nil {
			steps = append(steps, step{"firewall-host", name, func(ctx context.Context) (*planned, error) { return r.planHostFirewall(ctx, in, fw.Host) }})
		}
		if fw.AWS != nil {
			steps = append(steps, step{"firewall-aws", name, func(ctx context.Context) (*planned, error) { return r.planAWSFirewall(ctx, in, fw.AWS) }})
		}
		if fw.Azure != nil {
			steps = append(steps, step{"firewall-azure", name, func(ctx context.Context) (*planned, error) { return r.planAzureFirewall(ctx, in, fw.Azure) }})
		}
	}
	if in.Registration != nil {
		steps = append(steps, step{"registration", name, func(ctx context.Context) (*planned, error) { return r.planRegistration(ctx, in, p) }})
	}
	if in.Service != nil {
		steps = append(steps, step{"service", name, func(ctx context.Context) (*planned, error) { return r.planService(ctx, in, p, st) }})
	}
	steps = append(steps, step{"health", name, func(ctx context.Context) (*planned, error) { return r.planHealth(ctx, st) }})
	return steps
}

// planInstance: the configuration file, the index entry, the home.
func (r *run) planInstance(p instancePaths) (*planned, error) {
	out := &planned{}
	if _, err := os.Stat(p.config); errors.Is(err, os.ErrNotExist) {
		out.add("create the configuration file "+p.config, func(context.Context) error {
			if _, err := config.EnsurePrivateDirAll(filepath.Dir(p.config)); err != nil {
				return config.Userf("Cannot create the configuration directory: %v. Run provision as a user who can write there (usually root).", errors.Unwrap(err))
			}
			return config.NewSettings(p.config).Save()
		})
	} else if err != nil {
		return nil, config.Userf("Cannot read %s: %v.", p.config, err)
	}
	idx := config.NewIndex(r.opts.Root)
	want := config.Instance{Name: p.name, ConfigurationFilePath: p.config}
	if have, err := idx.Get(p.name); err != nil || have != want {
		out.add(fmt.Sprintf("register instance %s with configuration %s", p.name, p.config), func(context.Context) error {
			_, err := idx.Register(want)
			return err
		})
	}
	if _, err := os.Stat(p.home); errors.Is(err, os.ErrNotExist) {
		out.add("create the home directory "+p.home, func(context.Context) error {
			if _, err := config.EnsurePrivateDirAll(p.home); err != nil {
				return config.Userf("Cannot create the home directory: %v.", errors.Unwrap(err))
			}
			return nil
		})
	}
	return out, nil
}

// loadSettings reads the instance's configuration; in a dry run a file the
// instance step would create reads as empty.
func (r *run) loadSettings(path string) (*config.Settings, error) {
	s, err := config.LoadSettings(path)
	if err != nil && r.opts.DryRun {
		if _, statErr := os.Stat(path); errors.Is(statErr, os.ErrNotExist) {
			return config.NewSettings(path), nil
		}
	}
	return s, err
}

// planSettings runs edit on a copy of the configuration to see which keys
// it changes; applying runs it again under the file's lock.
func (r *run) planSettings(out *planned, path string, edit func(*config.Settings) error) error {
	s, err := r.loadSettings(path)
	if err != nil {
		return err
	}
	before := map[string]string{}
	for _, k := range s.Keys() {
		before[k], _ = s.Get(k)
	}
	if err := edit(s); err != nil {
		return err
	}
	if !s.Changed() {
		return nil
	}
	var keys []string
	for _, k := range s.Keys() {
		if v, _ := s.Get(k); before[k] != v {
			keys = append(keys, k)
		}
	}
	for k := range before {
		if _, ok := s.Get(k); !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out.add(fmt.Sprintf("set %s in %s", strings.Join(keys, ", "), path), func(context.Context) error {
		_, err := config.Update(path, edit)
		return err
	})
	return nil
}

// planCertificate: generate one if there is none, or import the PFX.
func (r *run) planCertificate(in *Instance, p instancePaths) (*planned, error) {
	out := &planned{}
	s, err := r.loadSettings(p.config)
	if err != nil {
		return nil, err
	}
	mk := r.machineKey()
	if c := in.Certificate; c != nil && c.PFX != "" {
		path := c.PFX
		if !filepath.IsAbs(path) {
			path = filepath.Join(r.opts.Cwd, path)
		}
		cert, err := readPFX(path, string(c.Password))
		if err != nil {
			return nil, err
		}
		if s.Thumbprint() == cert.Thumbprint() {
			if _, ok := s.Get(config.KeyCertificate); ok {
				return out, nil
			}
		}
		out.add(fmt.Sprintf("import the certificate %s (thumbprint %s)", path, cert.Thumbprint()), func(context.Context) error {
			_, err := config.Update(p.config, func(s *config.Settings) error {
				_, err := s.SetCertificate(cert, mk)
				return err
			})
			return err
		})
		return out, nil
	}
	if _, ok := s.Get(config.KeyCertificate); ok && s.Thumbprint() != "" {
		return out, nil
	}
	out.add("generate a new certificate", func(context.Context) error {
		cert, err := config.GenerateCertificate()
		if err != nil {
			return err
		}
		_, err = config.Update(p.config, func(s *config.Settings) error {
			if _, ok := s.Get(config.KeyCertificate); ok && s.Thumbprint() != "" {
				return nil // another process made one meanwhile
			}
			_, err := s.SetCertificate(cert, mk)
			return err
		})
		if err == nil {
			r.opts.infof("Instance %s: new certificate, thumbprint %s", p.name, cert.Thumbprint())
		}
		return err
	})
	return out, nil
}

// readPFX reads a PFX file, or new-certificate's base64 text of one.
func readPFX(path, password string) (*config.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Userf("Cannot read the certificate %s: %v. Fix certificate.pfx.", path, errors.Unwrap(err))
	}
	if !strings.EqualFold(filepath.Ext(path), ".pfx") {
		if raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); derr == nil {
			data = raw
		}
	}
	cert, err := config.ParsePKCS12(data, password)
	switch {
	case err == nil:
		return cert, nil
	case errors.Is(err, config.ErrPFXPassword):
		return nil, config.Userf("The password of the PFX %s is wrong or missing: set certificate.password (as ${NAME}).", path)
	case errors.Is(err, config.ErrPFXNoKey):
		return nil, config.Userf("The PFX %s has no private key: export the certificate with its private key.", path)
	}
	return nil, config.Userf("%s is not a valid PFX (PKCS#12) file: %v.", path, err)
}

// planConfigure: home, application directory, listening or polling, proxy,
// and the declared trusted thumbprints.
func (r *run) planConfigure(in *Instance, p instancePaths, st *InstanceState) (*planned, error) {
	out := &planned{}
	app := in.App
	if app != "" && !filepath.IsAbs(app) {
		app = filepath.Join(r.opts.Cwd, app)
	}
	var trust []string
	for _, t := range in.Trust {
		n, err := config.NormalizeThumbprint(t)
		if err != nil {
			return nil, err
		}
		trust = append(trust, n)
	}
	mk := r.machineKey()
	edit := func(s *config.Settings) error {
		s.Set(config.KeyHome, p.home)
		if app != "" {
			s.Set(config.KeyApplicationDirectory, app)
		}
		if in.IsPolling() {
			s.Set(config.KeyNoListen, config.FormatBool(true))
			if n := in.Polling.Connections; n != 0 {
				s.Set(config.KeyPollingConnectionCount, strconv.Itoa(n))
			}
		} else {
			port, ip := config.DefaultPort, ""
			if l := in.Listen; l != nil {
				if l.Port != 0 {
					port = l.Port
				}
				if l.IP != "" && !strings.EqualFold(l.IP, "any") {
					ip = net.ParseIP(strings.Trim(l.IP, "[]")).String()
				}
			}
			s.Set(config.KeyNoListen, config.FormatBool(false))
			s.Set(config.KeyPortNumber, strconv.Itoa(port))
			if _, ok := s.Get(config.KeyListenIP); ok || ip != "" {
				s.Set(config.KeyListenIP, ip)
			}
		}
		if px := in.Proxy; px != nil {
			for _, keys := range []config.ProxyKeys{config.WebProxyKeys, config.PollingProxyKeys} {
				s.Set(keys.UseDefault, config.FormatBool(px.UseDefault || px.Host == ""))
				s.Set(keys.Host, px.Host)
				port := px.Port
				if port == 0 && px.Host != "" {
					port = 80
				}
				s.Set(keys.Port, strconv.Itoa(port))
				s.Set(keys.Username, px.Username)
				if err := config.SetProxyPassword(s, keys, string(px.Password), mk); err != nil {
					return err
				}
			}
		}
		if len(trust) > 0 {
			servers, err := s.TrustedServers()
			if err != nil {
				return err
			}
			for _, t := range trust {
				found := false
				for _, srv := range servers {
					found = found || strings.EqualFold(srv.Thumbprint, t)
				}
				if !found {
					servers = append(servers, config.TrustedServer{Thumbprint: t, CommunicationStyle: config.StyleTentaclePassive})
				}
			}
			s.SetTrustedServers(servers)
		}
		return nil
	}
	if err := r.planSettings(out, p.config, edit); err != nil {
		return nil, err
	}
	if !in.IsPolling() {
		st.Port = config.DefaultPort
		if in.Listen != nil && in.Listen.Port != 0 {
			st.Port = in.Listen.Port
		}
		if in.Listen != nil && in.Listen.IP != "" && !strings.EqualFold(in.Listen.IP, "any") {
			st.ListenIP = strings.Trim(in.Listen.IP, "[]")
		}
	}
	return out, nil
}
