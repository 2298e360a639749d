package setup

import (
	"bufio"
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tentacle-go/tentacle/agent/config"
)

func wizard(input string, out *strings.Builder) *Wizard {
	return &Wizard{In: bufio.NewReader(strings.NewReader(input)), Out: out, Server: OctopusServer{},
		Root: abs("/etc/octopus"), Hostname: "web01", DefaultApplications: abs("/home/Octopus/Applications")}
}

// abs is the Unix absolute path p as this OS writes an absolute path: on
// Windows, on drive C:.
func abs(p string) string {
	if runtime.GOOS == "windows" {
		return `C:` + filepath.FromSlash(p)
	}
	return p
}

// A listening Tentacle that only trusts a thumbprint: a thumbprint that is
// not 40 hex digits and a relative path are re-asked with the reason.
func TestListeningTentacleTrustingAThumbprint(t *testing.T) {
	thumb := strings.Repeat("ab", 20)
	input := strings.Join([]string{
		"",             // instance: Tentacle
		"relative/dir", // refused
		abs("/srv/tentacle"),
		"",  // applications: default
		"3", // not an option
		"1", // listening
		"",  // port 10933
		"",  // no proxy
		"",  // no server URL
		"not-a-thumbprint",
		thumb,
		"2", // no service
		"",  // save to the default
	}, "\n") + "\n"
	var out strings.Builder
	a, err := wizard(input, &out).Run(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		`"relative/dir" is not an absolute path`,
		"Type a number from 1 to 2.",
		"That is not a thumbprint: type the 40 hexadecimal digits the server shows.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the wizard did not say %q:\n%s", want, out.String())
		}
	}
	in := a.File.Instances[0]
	if in.Name != config.DefaultInstanceName || in.Config != filepath.Join(abs("/srv/tentacle"), "tentacle-Tentacle.config") || in.Listen == nil || in.Listen.Port != config.DefaultPort ||
		len(in.Trust) != 1 || in.Trust[0] != strings.ToUpper(thumb) || in.Registration != nil || in.Service != nil || a.SaveTo != filepath.Join(abs("/srv/tentacle"), "provision.yaml") || a.APIKey != "" {
		t.Errorf("answers: %+v %+v", a, in)
	}
}

// Input that ends early stops the wizard with what to do, not a loop.
func TestInputEndingEarly(t *testing.T) {
	var out strings.Builder
	_, err := wizard("Web\n", &out).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "The input ended before setup finished: nothing was changed.") {
		t.Errorf("%v", err)
	}
}

func TestPollingNeedsTheServerURL(t *testing.T) {
	var out strings.Builder
	// A polling Tentacle must have the server's URL: an empty answer is re-asked.
	_, err := wizard("\n"+abs("/srv/t")+"\n\n2\n\n\n", &out).Run(context.Background())
	if err == nil || !strings.Contains(out.String(), "A polling Tentacle needs the server's URL to register with it.") {
		t.Errorf("%v\n%s", err, out.String())
	}
}
