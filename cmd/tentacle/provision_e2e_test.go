//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

// provisionMachine is a temp machine root for the real binary.
type provisionMachine struct {
	t   *testing.T
	dir string
	env []string
}

func newProvisionMachine(t *testing.T, env ...string) *provisionMachine {
	m := &provisionMachine{t: t, dir: t.TempDir()}
	m.env = append(append(os.Environ(), "TentacleMachineConfigurationHomeDirectory="+filepath.Join(m.dir, "etc"), "NO_COLOR=1"), env...)
	return m
}

// run runs the binary with args; stdout and stderr apart.
func (m *provisionMachine) run(args ...string) (string, string, int) {
	c := exec.Command(builtBinary, args...)
	c.Env, c.Dir = m.env, m.dir
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	c.Run()
	return stdout.String(), stderr.String(), c.ProcessState.ExitCode()
}

func (m *provisionMachine) write(name, content string) string {
	path := filepath.Join(m.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		m.t.Fatal(err)
	}
	return path
}

func TestProvisionFileEndToEnd(t *testing.T) {
	srv := octopustest.NewServer(t)
	port := freePort(t)
	m := newProvisionMachine(t, "OCTOPUS_API_KEY="+srv.APIKey, "OCTOPUS_URL="+srv.URL)
	file := m.write("machine.yaml", fmt.Sprintf(`instances:
  - name: Web
    listen:
      port: %d
      ip: 127.0.0.1
    registration:
      server: ${OCTOPUS_URL}
      api-key: ${OCTOPUS_API_KEY}
      name: web01
      public-host-name: 127.0.0.1
      environments: [Production]
      roles: [web]
`, port))

	out, errOut, code := m.run("provision", "--file", file, "--dry-run")
	if code != 0 || !strings.Contains(out, "would change Web registration") || !strings.Contains(out, "Nothing was changed.") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if len(srv.Machines()) != 0 {
		t.Fatal("the dry run registered")
	}
	out, errOut, code = m.run("provision", "--file", file)
	if code != 0 || !strings.Contains(out, "changed      Web registration") || !strings.Contains(out, "4 changed, 1 unchanged.") {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = m.run("provision", "--file", file)
	if code != 0 || !strings.Contains(out, "0 changed, 5 unchanged.") {
		t.Fatalf("second run: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = m.run("provision", "--file", file, "--format", "json")
	var doc provisionJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || doc.Changed || doc.Failed || len(doc.Steps) != 5 || doc.Steps[3].Step != "registration" {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}

	// What provision declared serves: the agent runs a script for the server.
	agent := exec.Command(builtBinary, "agent", "--instance", "Web")
	agent.Env = m.env
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Signal(syscall.SIGTERM); agent.Wait() })
	lines, exit := runScript(t, srv, "web01", "echo provisioned; exit 3")
	if exit != 3 || !strings.Contains(strings.Join(lines, "\n"), "provisioned") {
		t.Fatalf("script: exit %d, %v", exit, lines)
	}
}

func TestProvisionStopsAtTheRightStep(t *testing.T) {
	srv := octopustest.NewServer(t)
	target := `instances:
  - name: Web
    listen: {port: 10944}
    registration:
      server: %s
      api-key: ${OCTOPUS_API_KEY}
      name: web01
      environments: [Production]
      roles: [web]
`
	t.Run("broken file", func(t *testing.T) {
		m := newProvisionMachine(t)
		file := m.write("broken.yaml", "instances:\n  - name: Web\n    listen:\n      prot: 10933\n")
		out, errOut, code := m.run("provision", "--file", file)
		if code != 1 || !strings.Contains(errOut, "broken.yaml:4:7: prot: unknown field \"prot\"") || out != "" {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if _, err := os.Stat(filepath.Join(m.dir, "etc")); !os.IsNotExist(err) {
			t.Fatal("a broken file changed the machine")
		}
		out, _, code = m.run("provision", "--file", file, "--format", "json")
		var doc provisionJSON
		if code != 1 || json.Unmarshal([]byte(out), &doc) != nil || !doc.Failed || !strings.Contains(doc.Error, "unknown field") {
			t.Fatalf("json: exit %d\n%s", code, out)
		}
	})
	t.Run("wrong API key", func(t *testing.T) {
		m := newProvisionMachine(t, "OCTOPUS_API_KEY=API-WRONG")
		file := m.write("m.yaml", fmt.Sprintf(target, srv.URL))
		out, errOut, code := m.run("provision", "--file", file)
		if code != 1 || !strings.Contains(errOut, "provision stopped at step registration of instance Web") || !strings.Contains(errOut, "401") ||
			!strings.Contains(out, "failed       Web registration") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if len(srv.Machines()) != 0 {
			t.Fatal("registered with a wrong key")
		}
	})
	t.Run("missing secret", func(t *testing.T) {
		m := newProvisionMachine(t)
		file := m.write("m.yaml", fmt.Sprintf(target, srv.URL))
		_, errOut, code := m.run("provision", "--file", file)
		if code != 1 || !strings.Contains(errOut, "m.yaml:6:16: instances[0].registration.api-key: the environment variable OCTOPUS_API_KEY is not set") {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		if _, err := os.Stat(filepath.Join(m.dir, "etc")); !os.IsNotExist(err) {
			t.Fatal("a missing secret changed the machine")
		}
	})
	t.Run("unreachable server", func(t *testing.T) {
		m := newProvisionMachine(t, "OCTOPUS_API_KEY=API-X")
		file := m.write("m.yaml", fmt.Sprintf(target, "http://127.0.0.1:1"))
		_, errOut, code := m.run("provision", "--file", file)
		if code != 1 || !strings.Contains(errOut, "provision stopped at step registration") || !strings.Contains(errOut, "Cannot reach the Octopus Server") {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
	})
}

func TestProvisionFromEnvAndFlags(t *testing.T) {
	srv := octopustest.NewServer(t)
	m := newProvisionMachine(t, "ServerUrl="+srv.URL, "ServerApiKey="+srv.APIKey, "TargetEnvironment=Production,Test",
		"TargetRole=web", "TargetName=web01", "PublicHostNameConfiguration=Custom", "CustomPublicHostName=web01.example", "ACCEPT_EULA=Y")
	written := filepath.Join(m.dir, "declared.yaml")
	out, errOut, code := m.run("provision", "--from-env", "--write-file", written, "--role", "db")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	data, err := os.ReadFile(written)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), srv.APIKey) || !strings.Contains(string(data), "api-key: ${ServerApiKey}") || !strings.Contains(string(data), "- db") {
		t.Fatalf("the written file:\n%s", data)
	}
	if ms := srv.Machines(); len(ms) != 1 || ms[0].Roles[0] != "db" || ms[0].Endpoint.URI != "https://web01.example:10933/" {
		t.Fatalf("registered %+v", ms)
	}
	// The file it wrote converges the same machine: nothing to change.
	out, errOut, code = m.run("provision", "--file", written)
	if code != 0 || !strings.Contains(out, "0 changed") {
		t.Fatalf("the written file: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := m.run("provision", "--file", written, "--from-env"); code != 1 || !strings.Contains(errOut, "--file declares the whole machine") {
		t.Fatalf("--file with --from-env: exit %d %s", code, errOut)
	}
}
