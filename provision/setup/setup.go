// Package setup is `tentacle setup`: the interactive way in for a person at
// a terminal. It asks what upstream's configure-tentacle.sh asks (instance,
// folders, listening or polling, port, proxy, server and API key or
// thumbprint, target or worker, environments, roles, pools, space, name),
// shows each default, validates each answer as it is typed (a thumbprint
// is 40 hex digits, the server URL answers as an Octopus Server, the API
// key is accepted) and re-asks until it is right, instead of failing at the
// end. The answers become a provision file (provision/plan), which the
// caller shows, saves and applies.
package setup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/octopus"
	"github.com/tentacle-go/tentacle/provision/plan"
)

// APIKeyVariable is the environment variable the saved provision file
// takes the API key from: the key itself is never written to disk.
const APIKeyVariable = "OCTOPUS_API_KEY"

// CheckTimeout bounds one validation that talks to the server.
const CheckTimeout = 15 * time.Second

// Server is what setup asks of the Octopus Server while validating.
type Server interface {
	// Probe checks that url answers as an Octopus Server; it returns the
	// server's version.
	Probe(ctx context.Context, url string, proxy *url.URL) (string, error)
	// Check signs in with apiKey (in space, "" for the default) and returns
	// the thumbprint the Tentacle must trust.
	Check(ctx context.Context, url, apiKey, space string, proxy *url.URL) (string, error)
}

// OctopusServer validates against a real server through provision/octopus.
type OctopusServer struct{}

func proxyFunc(p *url.URL) func(*http.Request) (*url.URL, error) {
	if p == nil {
		return nil
	}
	return http.ProxyURL(p)
}

func (OctopusServer) Probe(ctx context.Context, u string, proxy *url.URL) (string, error) {
	return octopus.Probe(ctx, octopus.Options{Server: u, Proxy: proxyFunc(proxy)})
}

func (OctopusServer) Check(ctx context.Context, u, apiKey, space string, proxy *url.URL) (string, error) {
	c, err := octopus.Connect(ctx, octopus.Options{Server: u, Credentials: octopus.Credentials{APIKey: apiKey}, Space: space, Proxy: proxyFunc(proxy)})
	if err != nil {
		return "", err
	}
	return c.ServerThumbprint(ctx)
}

// Wizard asks the questions.
type Wizard struct {
	In  *bufio.Reader
	Out io.Writer
	// ReadSecret reads a line without echoing it (the API key); nil reads
	// it from In like any answer.
	ReadSecret func() (string, error)
	// Server validates the URL and the API key.
	Server Server
	// Root is the machine configuration root (/etc/octopus): the default
	// configuration folder is <Root>/<instance>, as upstream's script.
	Root string
	// Hostname is the default machine name.
	Hostname string
	// DefaultApplications is the default applications folder.
	DefaultApplications string
}

// Answers are what the person chose: the provision file, the API key
// (kept out of the file), and where to save the file.
type Answers struct {
	File     *plan.File
	APIKey   string
	SaveTo   string
	Instance string
}

// errEOF is input ending before the wizard did.
var errEOF = config.Userf("The input ended before setup finished: nothing was changed. Run `tentacle setup` at a terminal and answer each question.")

// ask prints question with its default, reads a line, and passes it (or
// the default, when empty) to check until check accepts it.
func (w *Wizard) ask(question, def string, check func(string) (string, error)) (string, error) {
	for {
		if def != "" {
			fmt.Fprintf(w.Out, "%s [%s]: ", question, def)
		} else {
			fmt.Fprintf(w.Out, "%s: ", question)
		}
		line, err := w.In.ReadString('\n')
		if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
			return "", errEOF
		}
		answer := strings.TrimSpace(line)
		if answer == "" {
			answer = def
		}
		v, cerr := check(answer)
		if cerr == nil {
			return v, nil
		}
		fmt.Fprintf(w.Out, "  %v\n", cerr)
		if errors.Is(err, io.EOF) {
			return "", errEOF
		}
	}
}

// choose asks for one of the numbered options; it returns the index.
func (w *Wizard) choose(question string, options []string, def int) (int, error) {
	fmt.Fprintln(w.Out, question)
	for i, o := range options {
		fmt.Fprintf(w.Out, "  %d) %s\n", i+1, o)
	}
	v, err := w.ask("Choose", strconv.Itoa(def+1), func(s string) (string, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > len(options) {
			return "", fmt.Errorf("Type a number from 1 to %d.", len(options))
		}
		return s, nil
	})
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(v)
	return n - 1, nil
}

func required(what string) func(string) (string, error) {
	return func(s string) (string, error) {
		if s == "" {
			return "", fmt.Errorf("%s is required.", what)
		}
		return s, nil
	}
}

func requiredList(what string) func(string) (string, error) {
	return func(s string) (string, error) {
		if len(plan.SplitList(s)) == 0 {
			return "", fmt.Errorf("Give at least one %s (several: separate them with commas).", what)
		}
		return s, nil
	}
}

// absolutePathExample is an absolute path as this OS writes one.
var absolutePathExample = map[bool]string{false: "/etc/octopus/Tentacle", true: `C:\Octopus\Tentacle`}[runtime.GOOS == "windows"]

func absolutePath(s string) (string, error) {
	if s == "" || !filepath.IsAbs(s) {
		return "", fmt.Errorf("%q is not an absolute path: give one such as %s.", s, absolutePathExample)
	}
	return filepath.Clean(s), nil
}

func port(s string) (string, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q is not a TCP port: give a number from 1 to 65535.", s)
	}
	return s, nil
}

// Run asks every question and returns the answers. Nothing is changed.
func (w *Wizard) Run(ctx context.Context) (*Answers, error) {
	fmt.Fprintln(w.Out, "Setting up a Tentacle. Press Enter to take the default shown in [brackets].")
	name, err := w.ask("Name of the Tentacle instance", config.DefaultInstanceName, func(s string) (string, error) {
		if strings.ContainsAny(s, `/\:*?"<>|`) {
			return "", fmt.Errorf("%q cannot be an instance name: it must not contain / \\ : * ? \" < > |.", s)
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	folder, err := w.ask("Where should its configuration be stored?", filepath.Join(w.Root, name), absolutePath)
	if err != nil {
		return nil, err
	}
	apps, err := w.ask("Where should applications be installed?", w.DefaultApplications, absolutePath)
	if err != nil {
		return nil, err
	}
	in := plan.Instance{Name: name, Config: filepath.Join(folder, "tentacle-"+name+".config"), Home: folder, App: apps}

	style, err := w.choose("How will this Tentacle and the Octopus Server talk?", []string{
		"Listening: the Octopus Server connects to this machine",
		"Polling: this machine connects to the Octopus Server",
	}, 0)
	if err != nil {
		return nil, err
	}
	polling := style == 1
	if polling {
		in.Polling = &plan.Polling{}
	} else {
		p, err := w.ask("Port to listen on", strconv.Itoa(config.DefaultPort), port)
		if err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(p)
		in.Listen = &plan.Listen{Port: n}
	}

	var proxy *url.URL
	px, err := w.ask("Proxy to reach the Octopus Server, as host:port (empty for none)", "none", func(s string) (string, error) {
		if strings.EqualFold(s, "none") {
			return "", nil
		}
		host, p, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return "", fmt.Errorf("%q is not host:port: give one such as proxy.example:3128, or none.", s)
		}
		if _, err := port(p); err != nil {
			return "", err
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	if px != "" {
		host, p, _ := net.SplitHostPort(px)
		n, _ := strconv.Atoi(p)
		in.Proxy = &plan.Proxy{Host: host, Port: n}
		proxy = &url.URL{Scheme: "http", Host: px}
	}

	answers := &Answers{Instance: name}
	urlQuestion := "Octopus Server URL, such as https://octopus.example"
	if !polling {
		urlQuestion += " (none: only trust the server's thumbprint, register later)"
	}
	urlDefault := ""
	if !polling {
		urlDefault = "none"
	}
	server, err := w.ask(urlQuestion, urlDefault, func(s string) (string, error) {
		if !polling && strings.EqualFold(s, "none") {
			return "", nil
		}
		if s == "" {
			return "", errors.New("A polling Tentacle needs the server's URL to register with it.")
		}
		u, perr := url.Parse(s)
		if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return "", fmt.Errorf("%q is not a URL such as https://octopus.example.", s)
		}
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		defer cancel()
		version, err := w.Server.Probe(cctx, s, proxy)
		if err != nil {
			return "", fmt.Errorf("%v Type the URL again.", err)
		}
		fmt.Fprintf(w.Out, "  Octopus Server %s answers.\n", version)
		return strings.TrimSuffix(s, "/"), nil
	})
	if err != nil {
		return nil, err
	}

	if server == "" {
		thumb, err := w.ask("Thumbprint of the Octopus Server's certificate (Configuration > Thumbprints)", "", func(s string) (string, error) {
			t, err := config.NormalizeThumbprint(s)
			if err != nil {
				return "", errors.New("That is not a thumbprint: type the 40 hexadecimal digits the server shows.")
			}
			return t, nil
		})
		if err != nil {
			return nil, err
		}
		in.Trust = []string{thumb}
	} else {
		reg, key, err := w.registration(ctx, server, polling, proxy)
		if err != nil {
			return nil, err
		}
		in.Registration = reg
		answers.APIKey = key
	}

	svc, err := w.choose("Install and start it as a service now?", []string{"Yes", "No (run `tentacle agent` yourself)"}, 0)
	if err != nil {
		return nil, err
	}
	if svc == 0 {
		in.Service = &plan.Service{}
	}
	answers.File = &plan.File{Instances: []plan.Instance{in}}
	answers.SaveTo, err = w.ask("Save these answers as a provision file (re-run it with `tentacle provision --file`)", filepath.Join(folder, "provision.yaml"), absolutePath)
	if err != nil {
		return nil, err
	}
	return answers, nil
}

// registration asks the API key, space, role and the rest of registering.
func (w *Wizard) registration(ctx context.Context, server string, polling bool, proxy *url.URL) (*plan.Registration, string, error) {
	reg := &plan.Registration{Server: server, APIKey: plan.Secret("${" + APIKeyVariable + "}")}
	var key string
	for {
		fmt.Fprint(w.Out, "API key (API-...; not shown as you type): ")
		var line string
		var err error
		if w.ReadSecret != nil {
			line, err = w.ReadSecret()
			fmt.Fprintln(w.Out)
		} else {
			line, err = w.In.ReadString('\n')
			if errors.Is(err, io.EOF) && line != "" {
				err = nil
			}
		}
		if err != nil {
			return nil, "", errEOF
		}
		key = strings.TrimSpace(line)
		if !strings.HasPrefix(strings.ToUpper(key), "API-") {
			fmt.Fprintln(w.Out, "  An API key starts with API- (create one under your profile > My API Keys).")
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		_, err = w.Server.Check(cctx, server, key, "", proxy)
		cancel()
		if err == nil {
			fmt.Fprintln(w.Out, "  The server accepts this API key.")
			break
		}
		fmt.Fprintf(w.Out, "  %v\n", err)
	}
	space, err := w.ask("Space", "the default space", func(s string) (string, error) {
		if s == "the default space" {
			return "", nil
		}
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		defer cancel()
		if _, err := w.Server.Check(cctx, server, key, s, proxy); err != nil {
			return "", err
		}
		return s, nil
	})
	if err != nil {
		return nil, "", err
	}
	reg.Space = space

	kind, err := w.choose("Register this machine as", []string{"A deployment target", "A worker"}, 0)
	if err != nil {
		return nil, "", err
	}
	if kind == 0 {
		reg.As = plan.AsTarget
		envs, err := w.ask("Environments (comma-separated)", "", requiredList("environment"))
		if err != nil {
			return nil, "", err
		}
		roles, err := w.ask("Target tags (roles, comma-separated)", "", requiredList("role"))
		if err != nil {
			return nil, "", err
		}
		reg.Environments, reg.Roles = plan.SplitList(envs), plan.SplitList(roles)
	} else {
		reg.As = plan.AsWorker
		pools, err := w.ask("Worker pools (comma-separated)", "", requiredList("worker pool"))
		if err != nil {
			return nil, "", err
		}
		reg.WorkerPools = plan.SplitList(pools)
	}
	reg.Name, err = w.ask("Name of this machine in Octopus", w.Hostname, required("A name"))
	if err != nil {
		return nil, "", err
	}
	if polling {
		u, _ := url.Parse(server)
		def := "https://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(config.DefaultPollingPort)) + "/"
		reg.ServerCommsAddress, err = w.ask("The server's polling address", def, func(s string) (string, error) {
			return config.NormalizeServerAddress(s)
		})
		if err != nil {
			return nil, "", err
		}
	}
	return reg, key, nil
}
