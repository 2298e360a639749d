package plan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/provision/octopus/octopustest"
)

// machine is a temp machine root for Apply.
func machine(t *testing.T, env map[string]string) Options {
	t.Helper()
	return Options{
		Root:   t.TempDir(),
		Cwd:    t.TempDir(),
		Getenv: func(k string) string { return env[k] },
	}
}

func parse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const listeningTarget = `instances:
  - name: Web
    listen:
      port: 10955
    trust: [ABCDEF0123456789ABCDEF0123456789ABCDEF01]
    registration:
      server: ${OCTOPUS_URL}
      api-key: ${OCTOPUS_API_KEY}
      name: web01
      public-host-name: web01.example
      environments: [Production, test]
      roles: [web]
      tenants: [Acme Corp]
      tenanted-deployment-participation: TenantedOrUntenanted
`

func statuses(res Result) string {
	var b strings.Builder
	for _, s := range res.Steps {
		b.WriteString(s.Step + "=" + string(s.Status) + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestApplyListeningTargetConvergesAndSecondRunChangesNothing(t *testing.T) {
	srv := octopustest.NewServer(t)
	opts := machine(t, map[string]string{"OCTOPUS_URL": srv.URL, "OCTOPUS_API_KEY": srv.APIKey})
	f := parse(t, listeningTarget)

	dry := opts
	dry.DryRun = true
	res, err := Apply(context.Background(), f, dry)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "instance=changed certificate=changed configure=changed registration=changed health=unchanged" {
		t.Fatalf("dry run: %s", got)
	}
	if _, err := os.Stat(opts.Root); err == nil {
		if entries, _ := os.ReadDir(opts.Root); len(entries) != 0 {
			t.Fatalf("a dry run wrote %v", entries)
		}
	}
	if len(srv.Machines()) != 0 {
		t.Fatal("a dry run registered")
	}

	res, err = Apply(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "instance=changed certificate=changed configure=changed registration=changed health=unchanged" {
		t.Fatalf("first run: %s", got)
	}
	configPath := filepath.Join(opts.Root, "Web", "tentacle.config")
	s, err := config.LoadSettings(configPath)
	if err != nil {
		t.Fatal(err)
	}
	if port, _ := s.Port(); port != 10955 {
		t.Fatalf("port = %d", port)
	}
	servers, _ := s.TrustedServers()
	var thumbs []string
	for _, srv := range servers {
		thumbs = append(thumbs, srv.Thumbprint)
	}
	if !reflect.DeepEqual(thumbs, []string{"ABCDEF0123456789ABCDEF0123456789ABCDEF01", srv.Thumbprint()}) {
		t.Fatalf("trusted = %v", thumbs)
	}
	ms := srv.Machines()
	if len(ms) != 1 || ms[0].Name != "web01" || ms[0].Endpoint.URI != "https://web01.example:10955/" || ms[0].Endpoint.Thumbprint != s.Thumbprint() ||
		!reflect.DeepEqual(ms[0].EnvironmentIDs, []string{"Environments-3", "Environments-2"}) || ms[0].TenantedDeploymentParticipation != "TenantedOrUntenanted" {
		t.Fatalf("registered = %+v", ms)
	}
	if inst, err := config.NewIndex(opts.Root).Get("Web"); err != nil || inst.ConfigurationFilePath != configPath {
		t.Fatalf("index = %+v, %v", inst, err)
	}

	res, err = Apply(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.ChangedCount() != 0 {
		t.Fatalf("second run changed %d: %s %+v", res.ChangedCount(), statuses(res), res.Steps)
	}

	// Drift on the server is put back: a role removed by hand.
	f.Instances[0].Registration.Roles = []string{"web", "db"}
	res, err = Apply(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "instance=unchanged certificate=unchanged configure=unchanged registration=changed health=unchanged" {
		t.Fatalf("role change: %s", got)
	}
	if ms := srv.Machines(); len(ms) != 1 || !reflect.DeepEqual(ms[0].Roles, []string{"web", "db"}) {
		t.Fatalf("after the role change: %+v", ms)
	}
	if !strings.Contains(strings.Join(res.Steps[3].Changes, " "), "roles: [web] -> [web db]") {
		t.Fatalf("changes = %v", res.Steps[3].Changes)
	}
}

func TestApplyPollingWorker(t *testing.T) {
	srv := octopustest.NewServer(t)
	opts := machine(t, map[string]string{"OCTOPUS_URL": srv.URL, "TOKEN": srv.BearerToken})
	f := parse(t, `instances:
  - name: Worker
    polling:
      connections: 3
    registration:
      server: ${OCTOPUS_URL}
      bearer-token: ${TOKEN}
      as: worker
      name: worker01
      worker-pools: [Linux Workers]
      server-comms-address: `+srv.PollingAddress+`
`)
	if _, err := Apply(context.Background(), f, opts); err != nil {
		t.Fatal(err)
	}
	s, err := config.LoadSettings(filepath.Join(opts.Root, "Worker", "tentacle.config"))
	if err != nil {
		t.Fatal(err)
	}
	servers, _ := s.TrustedServers()
	if len(servers) != 1 || !servers[0].Polling() || servers[0].Address != srv.PollingAddress {
		t.Fatalf("trusted = %+v", servers)
	}
	ms := srv.Machines()
	if len(ms) != 1 || !ms[0].Worker || ms[0].Endpoint.URI != servers[0].SubscriptionID || ms[0].WorkerPoolIDs[0] != "WorkerPools-2" {
		t.Fatalf("registered = %+v", ms)
	}
	if n, _ := s.PollingConnectionCount(); n != 3 {
		t.Fatalf("connections = %d", n)
	}
	res, err := Apply(context.Background(), f, opts)
	if err != nil || res.ChangedCount() != 0 {
		t.Fatalf("second run: %v %s", err, statuses(res))
	}
}

func TestApplyStopsAtTheFailingStepWithNothingHalfDone(t *testing.T) {
	srv := octopustest.NewServer(t)
	t.Run("wrong API key", func(t *testing.T) {
		opts := machine(t, map[string]string{"OCTOPUS_URL": srv.URL, "OCTOPUS_API_KEY": "API-WRONG"})
		res, err := Apply(context.Background(), parse(t, listeningTarget), opts)
		var se *StepError
		if !errors.As(err, &se) || se.Step != "registration" || se.Instance != "Web" {
			t.Fatalf("error = %v", err)
		}
		if !strings.Contains(err.Error(), "provision stopped at step registration of instance Web") {
			t.Fatalf("error = %v", err)
		}
		if got := statuses(res); got != "instance=changed certificate=changed configure=changed registration=failed" {
			t.Fatalf("steps: %s", got)
		}
		if len(srv.Machines()) != 0 {
			t.Fatal("registered with a wrong key")
		}
		s, _ := config.LoadSettings(filepath.Join(opts.Root, "Web", "tentacle.config"))
		servers, _ := s.TrustedServers()
		if len(servers) != 1 {
			t.Fatalf("the server was trusted though registration failed: %+v", servers)
		}
		// The fix and a re-run continue from there.
		opts.Getenv = func(k string) string {
			return map[string]string{"OCTOPUS_URL": srv.URL, "OCTOPUS_API_KEY": srv.APIKey}[k]
		}
		res, err = Apply(context.Background(), parse(t, listeningTarget), opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := statuses(res); got != "instance=unchanged certificate=unchanged configure=unchanged registration=changed health=unchanged" {
			t.Fatalf("re-run: %s", got)
		}
	})
	t.Run("unreachable server", func(t *testing.T) {
		opts := machine(t, map[string]string{"OCTOPUS_URL": "http://127.0.0.1:1", "OCTOPUS_API_KEY": "API-X"})
		_, err := Apply(context.Background(), parse(t, listeningTarget), opts)
		var se *StepError
		if !errors.As(err, &se) || se.Step != "registration" {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("unknown environment", func(t *testing.T) {
		opts := machine(t, map[string]string{"OCTOPUS_URL": srv.URL, "OCTOPUS_API_KEY": srv.APIKey})
		f := parse(t, strings.Replace(listeningTarget, "[Production, test]", "[Nowhere]", 1))
		_, err := Apply(context.Background(), f, opts)
		if err == nil || !strings.Contains(err.Error(), "Could not find the environment with name, slug or Id Nowhere") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("missing secret", func(t *testing.T) {
		opts := machine(t, map[string]string{"OCTOPUS_URL": srv.URL})
		_, err := Apply(context.Background(), parse(t, listeningTarget), opts)
		if err == nil || !strings.Contains(err.Error(), "OCTOPUS_API_KEY is not set") {
			t.Fatalf("error = %v", err)
		}
		if entries, _ := os.ReadDir(opts.Root); len(entries) != 0 {
			t.Fatalf("a run with a missing secret wrote %v", entries)
		}
	})
}

func TestApplyRefusesAutoUpgradeUntilItExists(t *testing.T) {
	opts := machine(t, nil)
	opts.ServiceManager = nil
	f := parse(t, "instances:\n  - name: A\n    service:\n      auto-upgrade: true\n")
	_, err := Apply(context.Background(), f, opts)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "service" || !strings.Contains(err.Error(), "service.auto-upgrade is not available yet") {
		t.Fatalf("error = %v", err)
	}
}

func TestFromEnvConvergesTheSameStateAsTheEquivalentFile(t *testing.T) {
	srv := octopustest.NewServer(t)
	env := map[string]string{
		"ServerUrl": srv.URL, "ServerApiKey": srv.APIKey, "TargetEnvironment": "Production, test", "TargetRole": "web,db",
		"TargetName": "web01", "PublicHostNameConfiguration": "Custom", "CustomPublicHostName": "web01.example",
		"ListeningPort": "10931", "TargetTenant": "Acme Corp", "MachinePolicy": "Default Machine Policy", "ACCEPT_EULA": "Y",
	}
	fromEnv, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	file := parse(t, `instances:
  - name: Tentacle
    app: /home/Octopus/Applications
    listen:
      port: 10933
    registration:
      server: `+srv.URL+`
      api-key: ${ServerApiKey}
      name: web01
      environments: [Production, test]
      roles: [web, db]
      tenants: [Acme Corp]
      policy: Default Machine Policy
      force: true
      public-host-name: web01.example
      tentacle-comms-port: 10931
`)
	if !reflect.DeepEqual(fromEnv, file) {
		a, _ := Marshal(fromEnv)
		b, _ := Marshal(file)
		t.Fatalf("from env:\n%s\nfile:\n%s", a, b)
	}
	// And applied, both converge the same machine: the second is 0 changed.
	opts := machine(t, env)
	if _, err := Apply(context.Background(), fromEnv, opts); err != nil {
		t.Fatal(err)
	}
	res, err := Apply(context.Background(), file, opts)
	if err != nil || res.ChangedCount() != 0 {
		t.Fatalf("the file after --from-env: %v %s", err, statuses(res))
	}
	if ms := srv.Machines(); len(ms) != 1 || ms[0].Endpoint.URI != "https://web01.example:10931/" {
		t.Fatalf("registered = %+v", ms)
	}
}

func TestFromEnvRefusals(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"ServerApiKey": "k"}, "ServerUrl is not set"},
		{map[string]string{"ServerUrl": "https://o"}, "no credentials"},
		{map[string]string{"ServerUrl": "https://o", "ServerApiKey": "k", "TargetWorkerPool": "p", "TargetRole": "r"}, "cannot be used with TargetWorkerPool"},
		{map[string]string{"ServerUrl": "https://o", "ServerApiKey": "k", "TargetEnvironment": "e", "TargetRole": "r", "PublicHostNameConfiguration": "PublicIp"}, "PublicIp would ask an outside service"},
		{map[string]string{"ServerUrl": "https://o", "ServerApiKey": "k", "TargetEnvironment": "e"}, "at least one role"},
		{map[string]string{"ServerUrl": "https://o", "ServerApiKey": "k", "TargetWorkerPool": "p", "ServerPort": "x"}, `ServerPort="x" is not a TCP port`},
	} {
		_, err := FromEnv(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error = %v, want %q", tc.env, err, tc.want)
		}
	}
	f, err := FromEnv(func(k string) string {
		return map[string]string{"ServerUrl": "https://o", "BearerToken": "t", "ServerApiKey": "", "TargetWorkerPool": "a, b", "ServerPort": "10943", "PollingConnectionCount": "4"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	in := f.Instances[0]
	if !in.IsPolling() || in.Polling.Connections != 4 || in.Registration.BearerToken != "${BearerToken}" || !reflect.DeepEqual(in.Registration.WorkerPools, []string{"a", "b"}) || in.Registration.As != AsWorker {
		t.Fatalf("polling worker from env = %+v %+v", in, in.Registration)
	}
}
