//go:build linux

package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

// tentacle doctor, the real binary, on a registered polling worker (all
// good, exit 0, text and JSON) and on a listening target whose agent is not
// running (the port check fails, exit 1).
func TestDoctor(t *testing.T) {
	srv := octopustest.NewServer(t)
	w := newInstance(t, "Worker")
	w.must("configure", "--instance", "Worker", "--noListen", "True")
	w.must("register-worker", "--instance", "Worker", "--server", srv.URL, "--apiKey", srv.APIKey, "--workerpool", "Linux Workers",
		"--name", "worker01", "--comms-style", "TentacleActive", "--server-comms-address", srv.PollingAddress)
	out := w.must("doctor", "--instance", "Worker", "--server", srv.URL)
	for _, want := range []string{
		"Checking Tentacle instance Worker (" + w.configPath() + ")",
		"OK    thumbprint " + srv.PollingAddress + ": The server's certificate " + srv.Thumbprint() + " is the trusted one.",
		"OK    handshake " + srv.PollingAddress + ": The server accepted a polling connection for poll://",
		"OK    clock " + srv.PollingAddress + ": This machine's clock agrees with the server's",
		" 0 failed,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	out = w.must("doctor", "--instance", "Worker", "--format", "json")
	var doc struct {
		Instance string
		OK       bool
		Checks   []struct{ Check, Server, Status, Found, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	statuses := map[string]string{}
	for _, c := range doc.Checks {
		statuses[c.Check] = c.Status
	}
	if doc.Instance != "Worker" || !doc.OK || statuses["handshake"] != "ok" || statuses["tcp"] != "ok" || statuses["certificate"] != "ok" {
		t.Errorf("json: %+v", doc)
	}

	l := newInstance(t, "Web")
	l.must("configure", "--instance", "Web", "--trust", srv.Thumbprint())
	out, code := l.run("doctor", "--instance", "Web")
	if code != 1 || !strings.Contains(out, "FAIL  port: Nothing accepts connections on 127.0.0.1:"+strconv.Itoa(l.port)) ||
		!strings.Contains(out, "Fix: Start the agent (tentacle service --instance Web --start)") {
		t.Errorf("doctor on a stopped listening Tentacle: exit %d\n%s", code, out)
	}
	l.startAgent()
	waitListening(t, l.port, 20*time.Second)
	if out, code := l.run("doctor", "--instance", "Web"); code != 0 || !strings.Contains(out, "OK    port: Something accepts connections on 127.0.0.1:"+strconv.Itoa(l.port)) {
		t.Errorf("doctor on a running listening Tentacle: exit %d\n%s", code, out)
	}
}
