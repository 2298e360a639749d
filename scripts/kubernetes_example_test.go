package scripts_test

import (
	"os"
	"slices"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/tentacle-go/tentacle/provision/plan"
)

// k8sStatefulSet is the part of a StatefulSet the example's promises rest
// on; yaml.Strict is not used, as the manifest has many more fields.
type k8sStatefulSet struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
					FSGroup      int  `yaml:"fsGroup"`
				} `yaml:"securityContext"`
				Containers []struct {
					Env []struct {
						Name      string `yaml:"name"`
						Value     string `yaml:"value"`
						ValueFrom *struct {
							SecretKeyRef *struct {
								Name string `yaml:"name"`
							} `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
					SecurityContext struct {
						ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
					} `yaml:"securityContext"`
					LivenessProbe struct {
						Exec struct {
							Command []string `yaml:"command"`
						} `yaml:"exec"`
					} `yaml:"livenessProbe"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

// TestKubernetesExample checks what the StatefulSet example promises: a
// polling worker from upstream's variables only (each one a variable
// `provision --from-env` reads, or one the image's entrypoint reads), the
// API key from a Secret, its state on a claim mounted at /etc/octopus,
// non-root with a read-only root filesystem and /tmp writable, and livez
// as the liveness probe. kubectl's --dry-run=client needs an API server
// for discovery, which a test here does not have.
func TestKubernetesExample(t *testing.T) {
	data, err := os.ReadFile("examples/kubernetes/polling-worker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ss k8sStatefulSet
	if err := yaml.Unmarshal(data, &ss); err != nil {
		t.Fatal(err)
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
		if e.Name == "ServerApiKey" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
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
	if len(ss.Spec.VolumeClaimTemplates) != 1 || mounts["/etc/octopus"] != ss.Spec.VolumeClaimTemplates[0].Metadata.Name {
		t.Errorf("the state volume is not a claim mounted at /etc/octopus: %v", mounts)
	}
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser != 999 || pod.SecurityContext.FSGroup != 999 ||
		!c.SecurityContext.ReadOnlyRootFilesystem || mounts["/tmp"] == "" {
		t.Errorf("not uid 999 with a read-only root and a writable /tmp: %+v %+v %v", pod.SecurityContext, c.SecurityContext, mounts)
	}
	if !slices.Equal(c.LivenessProbe.Exec.Command, []string{"/usr/bin/tentacle", "livez", "--instance", plan.EnvInstance}) {
		t.Errorf("liveness probe %v", c.LivenessProbe.Exec.Command)
	}
}
