package plan

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const fullFile = `release:
  feed: https://releases.example/tentacle
  version: ">= 1.4, < 2"
instances:
  - name: Web
    home: /var/lib/tentacle/Web
    listen:
      port: 10933
      ip: any
    trust: [1234567890ABCDEF1234567890ABCDEF12345678]
    proxy:
      host: proxy.example
      port: 3128
      username: tentacle
      password: ${PROXY_PASSWORD}
    firewall:
      host:
        backend: nftables
        sources: [10.0.0.0/8]
      aws:
        self: true
      azure:
        subscription: sub
        resource-group: rg
        nsg: web-nsg
        priority: 200
    registration:
      server: https://octopus.example
      api-key: ${OCTOPUS_API_KEY}
      space: Default
      name: web01
      environments: [Production]
      roles: [web]
      tenants: [Acme]
      tenant-tags: [Tier/Gold]
      tenanted-deployment-participation: TenantedOrUntenanted
      policy: Default Machine Policy
      public-host-name: web01.example
    service:
      username: octopus
  - name: Worker
    polling:
      connections: 5
    certificate:
      pfx: /etc/octopus/worker.pfx
      password: ${PFX_PASSWORD}
    registration:
      server: https://octopus.example
      api-key-file: /run/secrets/octopus-api-key
      as: worker
      worker-pools: [Linux workers]
      server-comms-address: https://octopus.example:10943/
    service:
      start: false
`

func TestParseFullFileAndMarshalRoundTrip(t *testing.T) {
	f, err := Parse("full.yaml", []byte(fullFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Instances[0].Registration.Roles; !reflect.DeepEqual(got, []string{"web"}) {
		t.Fatalf("roles = %v", got)
	}
	if f.Instances[0].Firewall.Host.Sources[0] != "10.0.0.0/8" || f.Instances[0].Firewall.Azure.Priority != 200 {
		t.Fatalf("firewall = %+v", f.Instances[0].Firewall)
	}
	if f.Instances[1].Service.Start == nil || *f.Instances[1].Service.Start || !f.Instances[1].IsPolling() {
		t.Fatalf("worker = %+v", f.Instances[1])
	}
	out, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("marshalled.yaml", out)
	if err != nil {
		t.Fatalf("Marshal's output does not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(f, back) {
		t.Fatalf("round trip differs:\n%+v\n%+v", f, back)
	}
	if !strings.Contains(string(out), "${OCTOPUS_API_KEY}") {
		t.Fatalf("the secret reference was not kept:\n%s", out)
	}
}

func TestParseRefusesWithLineAndField(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown key", "instances:\n  - name: A\n    listen:\n      port: 10933\n    bogus: 1\n", `m.yaml:5:5: bogus: unknown field "bogus"`},
		{"wrong type", "instances:\n  - name: A\n    listen:\n      port: abc\n", "m.yaml:4:13: port: cannot unmarshal string into int"},
		{"plaintext api key", "instances:\n  - registration:\n      server: https://x\n      api-key: API-PLAIN\n      environments: [a]\n      roles: [b]\n", "m.yaml:4:16: instances[0].registration.api-key: secrets are not kept in the file in plain text"},
		{"missing roles", "instances:\n  - registration:\n      server: https://x\n      api-key: ${K}\n      environments: [a]\n", "m.yaml:3:13: instances[0].registration.roles: a deployment target needs at least one role"},
		{"both listen and polling", "instances:\n  - listen: {port: 1}\n    polling: {connections: 2}\n", "m.yaml:3:14: instances[0].polling: an instance either listens or polls"},
		{"firewall on polling", "instances:\n  - polling: {}\n    firewall:\n      host: {}\n", "m.yaml:4:11: instances[0].firewall: a polling Tentacle opens no inbound port"},
		{"bad thumbprint", "instances:\n  - trust: [abc]\n", "m.yaml:2:13: instances[0].trust[0]: \"abc\" is not a thumbprint"},
		{"empty", "\n", "m.yaml is empty"},
		{"wrong type in flow style", "instances:\n  - name: x\n    listen: {port: \"x\"}\n", "m.yaml:3:20: port: cannot unmarshal string into int"},
		{"duplicate instance", "instances:\n  - name: A\n  - name: a\n", "m.yaml:3:11: instances[1].name: instance a is declared twice"},
		{"worker keys on target", "instances:\n  - registration:\n      server: https://x\n      api-key: ${K}\n      environments: [a]\n      roles: [b]\n      worker-pools: [p]\n", "instances[0].registration.worker-pools: worker pools are for workers"},
		{"comms style disagrees", "instances:\n  - polling: {}\n    registration:\n      server: https://x\n      api-key: ${K}\n      as: worker\n      worker-pools: [p]\n      comms-style: TentaclePassive\n", "comms-style: TentaclePassive does not agree with the instance, which polls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			var fe *FileError
			if !errorsAs(err, &fe) {
				t.Fatalf("error is %T, not a FileError", err)
			}
		})
	}
}

func TestPlaintextSecretsWhenTheUserInsists(t *testing.T) {
	src := "allow-plaintext-secrets: true\ninstances:\n  - registration:\n      server: https://x\n      api-key: API-PLAIN\n      environments: [a]\n      roles: [b]\n"
	f, err := Parse("m.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.Instances[0].Registration.APIKey != "API-PLAIN" {
		t.Fatalf("api key = %q", f.Instances[0].Registration.APIKey)
	}
}

func TestResolveExpandsReferencesAndRefusesMissingOnes(t *testing.T) {
	src := "instances:\n  - registration:\n      server: ${SERVER}\n      api-key: ${KEY}\n      environments: [\"${ENV}-eu\"]\n      roles: [b]\n"
	f, err := Parse("m.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SERVER": "https://octopus.example", "KEY": "API-123", "ENV": "Prod"}
	got, err := Resolve(f, func(k string) string { return env[k] }, "m.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := got.Instances[0].Registration
	if r.Server != "https://octopus.example" || r.APIKey != "API-123" || r.Environments[0] != "Prod-eu" {
		t.Fatalf("resolved = %+v", r)
	}
	if f.Instances[0].Registration.APIKey != "${KEY}" {
		t.Fatal("Resolve changed the parsed file")
	}
	delete(env, "KEY")
	_, err = Resolve(f, func(k string) string { return env[k] }, "m.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "m.yaml:4:16: instances[0].registration.api-key: the environment variable KEY is not set") {
		t.Fatalf("error = %v", err)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
