package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"

	"github.com/tentacle-go/tentacle/agent/config"
)

// ShowConfigurationCmd is upstream's show-configuration: the instance's
// settings as nested JSON (dotted keys become objects, keys sorted), without
// the certificate, the last handshake, IsRegistered or proxy settings.
type ShowConfigurationCmd struct {
	InstanceFlags
	apiFlags
	File string `name:"file" help:"Exports the server configuration to a file. If not specified output goes to the console" placeholder:"PATH"`
}

func (c *ShowConfigurationCmd) Run(e *Env) error {
	_, s, err := c.load(e)
	if err != nil {
		return err
	}
	exe, _ := os.Executable()
	if _, _, err := config.ApplyEnvironment(s, e.Getenv, config.DotEnvPath(exe)); err != nil { // show what the agent would run with
		return err
	}
	flat, err := showConfiguration(s)
	if err != nil {
		return err
	}
	// With API credentials, the server's side is added, as upstream.
	if c.Server != "" {
		thumb := s.Thumbprint()
		if thumb == "" {
			return config.Userf("No certificate has been generated for this Tentacle. Unable to display configuration.")
		}
		proxy, err := httpProxy(s, config.PollingProxyKeys, e.MachineKey())
		if err != nil {
			return err
		}
		client, err := c.connect(context.Background(), proxy)
		if err != nil {
			return err
		}
		view, ok, err := client.ServerView(context.Background(), thumb)
		if err != nil {
			return err
		}
		if !ok {
			e.Errorf("No machines or workers were found on the specified server with the thumbprint '%s'. Unable to retrieve server side configuration.", thumb)
		}
		for k, v := range view {
			flat[k] = v
		}
	}
	tree := map[string]any{}
	for key, v := range flat {
		node := tree
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			child, ok := node[p].(map[string]any)
			if !ok {
				child = map[string]any{}
				node[p] = child
			}
			node = child
		}
		node[parts[len(parts)-1]] = v
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(tree); err != nil {
		return err
	}
	if c.File != "" {
		path := absPath(e, c.File)
		if err := config.WriteFileAtomic(path, []byte(strings.TrimSuffix(b.String(), "\n")), 0o600); err != nil {
			return config.Userf("Cannot write %s: %v.", path, errors.Unwrap(err))
		}
		e.Infof("The configuration has been written to %s.", path)
		return nil
	}
	_, err = e.Stdout.Write([]byte(b.String()))
	return err
}

// showConfiguration is the flat key -> typed value view upstream prints.
func showConfiguration(s *config.Settings) (map[string]any, error) {
	port, err := s.Port()
	if err != nil {
		return nil, err
	}
	noListen, err := s.NoListen()
	if err != nil {
		return nil, err
	}
	servers, err := s.TrustedServers()
	if err != nil {
		return nil, err
	}
	if servers == nil {
		servers = []config.TrustedServer{}
	}
	count, err := s.PollingConnectionCount()
	if err != nil {
		return nil, err
	}
	nullable := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	var countValue any
	if count != 0 {
		countValue = count
	}
	thumb := ""
	if _, ok := s.Get(config.KeyCertificate); ok {
		thumb = s.Thumbprint()
	}
	return map[string]any{
		config.KeyHome:                   s.Home(),
		config.KeyPortNumber:             port,
		config.KeyListenIP:               nullable(s.ListenIP()),
		config.KeyNoListen:               noListen,
		config.KeyTrustedServers:         servers,
		config.KeyApplicationDirectory:   s.ApplicationDirectory(),
		config.KeyCertificateThumbprint:  nullable(thumb),
		config.KeyPollingConnectionCount: countValue,
		// The watchdog is a Windows scheduled task; upstream reports it off
		// elsewhere with these values.
		"Octopus.Watchdog.Enabled":   false,
		"Octopus.Watchdog.Interval":  0,
		"Octopus.Watchdog.Instances": "*",
	}, nil
}
