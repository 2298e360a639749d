// The manifest is a Linux container's, and checking it is the same on every
// platform; built for Windows it would compile 47 packages of k8s.io and
// sigs.k8s.io (~25 CPU-seconds) into the Windows test build and vet of every
// cold CI run for no Windows behaviour (docs/benchmarks.md).

//go:build !windows

package scripts_test

import (
	"os"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/tentacle-go/tentacle/provision/plan"
)

// TestKubernetesExample checks what the StatefulSet example promises: a
// polling worker from upstream's variables only (each one a variable
// `provision --from-env` reads, or one the image's entrypoint reads), the
// API key from a Secret, its state on a claim mounted at /etc/octopus,
// non-root with a read-only root filesystem and /tmp writable, and livez
// as the liveness probe.
//
// The manifest is decoded strictly into Kubernetes' own API types
// (k8s.io/api, through sigs.k8s.io/yaml as kubectl reads manifests): a
// field the API does not have, or a value of the wrong type, fails. That is
// the schema check; kubectl's --dry-run=client needs an API server for
// discovery, and the API server's own validation (required fields, value
// ranges) needs a cluster, neither of which a test here has.
func TestKubernetesExample(t *testing.T) {
	data, err := os.ReadFile("examples/kubernetes/polling-worker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ss appsv1.StatefulSet
	if err := yaml.UnmarshalStrict(data, &ss); err != nil {
		t.Fatalf("not a StatefulSet of Kubernetes' API: %v", err)
	}
	if ss.APIVersion != "apps/v1" || ss.Kind != "StatefulSet" || len(ss.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("not one container of an apps/v1 StatefulSet: %+v", ss)
	}
	pod := ss.Spec.Template.Spec
	c := pod.Containers[0]
	known := map[string]bool{"TENTACLE_STOP_GRACE": true, "TENTACLE_METRICS_LISTEN": true}
	for _, v := range plan.EnvVars {
		known[v.Name] = true
	}
	set := map[string]bool{}
	for _, e := range c.Env {
		if !known[e.Name] {
			t.Errorf("env %s is read by neither provision --from-env nor tentacle container", e.Name)
		}
		set[e.Name] = true
		if e.Name == "ServerApiKey" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name == "") {
			t.Error("ServerApiKey is not taken from a Secret")
		}
	}
	for _, need := range []string{"ServerUrl", "ServerApiKey", "TargetWorkerPool", "ServerCommsAddress"} {
		if !set[need] {
			t.Errorf("env %s is missing: a polling worker needs it", need)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if len(ss.Spec.VolumeClaimTemplates) != 1 || mounts["/etc/octopus"] != ss.Spec.VolumeClaimTemplates[0].Name {
		t.Errorf("the state volume is not a claim mounted at /etc/octopus: %v", mounts)
	}
	psc, csc := pod.SecurityContext, c.SecurityContext
	if psc == nil || csc == nil || !isTrue(psc.RunAsNonRoot) || !is999(psc.RunAsUser) || !is999(psc.FSGroup) ||
		!isTrue(csc.ReadOnlyRootFilesystem) || mounts["/tmp"] == "" {
		t.Errorf("not uid 999 with a read-only root and a writable /tmp: %+v %+v %v", psc, csc, mounts)
	}
	if p := c.LivenessProbe; p == nil || p.Exec == nil || !slices.Equal(p.Exec.Command, []string{"/usr/bin/tentacle", "livez", "--instance", plan.EnvInstance}) {
		t.Errorf("liveness probe %+v", p)
	}
}

func isTrue(b *bool) bool { return b != nil && *b }
func is999(n *int64) bool { return n != nil && *n == 999 }
