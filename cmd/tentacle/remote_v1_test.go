//go:build !windows

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent"
	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/agent/scripts"
	"github.com/tentacle-go/tentacle/agent/tentacleclient"
)

// v1OnlyAgent is our agent, in-process, serving only IScriptService and
// IFileTransferService like a Tentacle older than mid-2023, and the
// environment for `remote` commands as its trusted operator.
type v1OnlyAgent struct {
	endpoint, thumb string
	operatorPFX     string
}

func startV1OnlyAgent(t *testing.T) *v1OnlyAgent {
	t.Helper()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	operator, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := operator.PKCS12Unprotected()
	if err != nil {
		t.Fatal(err)
	}
	opPFX := filepath.Join(dir, "operator.pfx")
	if err := os.WriteFile(opPFX, pfx, 0o600); err != nil {
		t.Fatal(err)
	}
	s := config.NewSettings(filepath.Join(home, "t.config"))
	s.Set(config.KeyHome, home)
	s.Set(config.KeyPortNumber, strconv.Itoa(freePort(t)))
	s.Set(config.KeyListenIP, "127.0.0.1")
	s.SetTrustedServers([]config.TrustedServer{{Thumbprint: operator.Thumbprint(), CommunicationStyle: config.StyleTentaclePassive}})
	a, err := agent.New(agent.Options{Settings: s, Certificate: cert, MachineKey: config.NewUnixMachineKey(home), Limits: halibut.DefaultLimits(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Executable: builtBinary, SupervisorCommand: []string{builtBinary, scripts.SupervisorArg},
		Getenv: func(string) string { return "" }, OnlyV1Services: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	return &v1OnlyAgent{endpoint: "https://" + a.Addr().String() + "/", thumb: cert.Thumbprint(), operatorPFX: opPFX}
}

// `remote` drives a V1-only Tentacle as Octopus Server does: capabilities
// fall back to IScriptService and IFileTransferService, scripts run with
// the legacy IScriptService, files move as with any Tentacle.
func TestRemoteAgainstAV1OnlyTentacle(t *testing.T) {
	a := startV1OnlyAgent(t)
	h := newHarness(t)
	h.env["TENTACLE_OPERATOR_CERT"] = a.operatorPFX
	target := []string{"--endpoint", a.endpoint, "--thumbprint", a.thumb}
	remote := func(args ...string) (string, string, int) {
		t.Helper()
		return h.run(append(append([]string{"remote", args[0]}, target...), args[1:]...)...)
	}

	out, errs, code := remote("capabilities")
	if out != "IScriptService\nIFileTransferService\n" || code != 0 || !strings.Contains(errs, "older than mid-2023") {
		t.Errorf("capabilities: stdout %q stderr %q exit %d", out, errs, code)
	}
	if out, _, code = remote("capabilities", "--format", "json"); code != 0 || strings.Join(strings.Fields(out), "") != `{"SupportedCapabilities":["IScriptService","IFileTransferService"]}` {
		t.Errorf("capabilities as JSON: %q exit %d", out, code)
	}

	out, errs, code = remote("exec", "--", "echo out; echo err >&2; exit 3")
	if out != "out\n" || errs != "err\n" || code != 3 {
		t.Errorf("exec: stdout %q stderr %q exit %d", out, errs, code)
	}
	data := filepath.Join(h.cwd, "data.txt")
	os.WriteFile(data, []byte("sent with the script\n"), 0o644)
	if out, errs, code = remote("exec", "--files", data, "--", "cat data.txt"); out != "sent with the script\n" || code != 0 {
		t.Errorf("exec with a file: stdout %q stderr %q exit %d", out, errs, code)
	}

	if _, errs, code = remote("upload", data, "uploaded.txt"); code != 0 {
		t.Fatalf("upload: %s", errs)
	}
	back := filepath.Join(h.cwd, "back.txt")
	if _, errs, code = remote("download", "uploaded.txt", back); code != 0 {
		t.Fatalf("download: %s", errs)
	}
	if b, _ := os.ReadFile(back); string(b) != "sent with the script\n" {
		t.Errorf("downloaded %q", b)
	}
}

// Ctrl+C cancels a script on a V1-only Tentacle with the legacy
// CancelScript, and `remote exec` follows it to its end.
func TestRemoteExecCtrlCCancelsOnAV1OnlyTentacle(t *testing.T) {
	a := startV1OnlyAgent(t)
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	c := exec.Command(builtBinary, "remote", "exec", "--endpoint", a.endpoint, "--thumbprint", a.thumb,
		"--", fmt.Sprintf("sleep 1000 & echo $! > %s; wait", pidFile))
	c.Env = append(os.Environ(), "TENTACLE_OPERATOR_CERT="+a.operatorPFX, "NO_COLOR=1")
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, _ := os.ReadFile(pidFile); len(bytes.TrimSpace(b)) > 0 {
			break
		}
		select {
		case <-done:
			t.Fatalf("remote exec ended before the script started: %s", errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			<-done
			t.Fatalf("the script did not start: %s", errb.String())
		}
	}
	c.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		<-done
		t.Fatal("remote exec did not end after Ctrl+C")
	}
	if code := c.ProcessState.ExitCode(); code == 0 || !strings.Contains(errb.String(), "Cancelling the script") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, 0); err == nil {
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !bytes.Contains(stat, []byte(") Z ")) {
			t.Errorf("the script's child %d survived the cancel", pid)
		}
	}
}

// A request the Tentacle dropped reads as what happened and what to check,
// with the step that failed.
func TestRemoteErrorForADroppedRequest(t *testing.T) {
	err := remoteStepError(&tentacleclient.StepError{Step: "starting the script with IScriptServiceV2",
		Err: &halibut.NoResponseError{Service: "IScriptServiceV2", Method: "StartScript", Err: io.EOF}})
	want := "Starting the script with IScriptServiceV2: the Tentacle closed the connection without answering IScriptServiceV2.StartScript (EOF)."
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "see the Tentacle's log") {
		t.Errorf("got %q", err)
	}
}
