package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc/mgr"
)

func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// Install through the real SCM: the service is created with the flagged
// command line and stays installed when the SCM does not implement the
// optional settings (Wine's answers ERROR_INVALID_LEVEL for the service SID
// and the failure actions): those are warnings. Uninstall leaves nothing.
func TestSCMInstallWarnsAboutOptionalSettings(t *testing.T) {
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("SKIP: installing a service needs an elevated (Administrator) process")
	}
	ctx := context.Background()
	var warnings []string
	scm := &SCM{Warnf: func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }}
	spec := Spec{Instance: fmt.Sprintf("svc-test-%d", os.Getpid()), ConfigPath: `C:\nowhere\tentacle.config`, Executable: os.Args[0]}
	name := WindowsServiceName(spec.Instance)
	t.Cleanup(func() { scm.Uninstall(ctx, spec) })

	for _, round := range []string{"install", "install again"} {
		warnings = nil
		if err := scm.Install(ctx, spec); err != nil {
			t.Fatalf("%s: %v", round, err)
		}
		cfg := serviceConfig(t, name)
		if !strings.HasSuffix(cfg.BinaryPathName, " run --instance=\""+spec.Instance+"\" "+ServiceFlag) || cfg.StartType != mgr.StartAutomatic || cfg.Description != Description {
			t.Fatalf("%s: installed %+v", round, cfg)
		}
		if underWine() {
			if len(warnings) != 2 || !strings.Contains(warnings[0], "does not support a service SID") || !strings.Contains(warnings[1], "does not support recovery actions on non-crash failures") {
				t.Fatalf("%s: warnings %q, want the two Wine does not implement", round, warnings)
			}
		} else if len(warnings) != 0 {
			t.Fatalf("%s: warnings %q", round, warnings)
		}
	}

	if err := scm.Uninstall(ctx, spec); err != nil {
		t.Fatal(err)
	}
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(name); !errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("after uninstall, OpenService: %v", err)
	}
}

func serviceConfig(t *testing.T, name string) mgr.Config {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		t.Fatalf("the service is not installed: %v", err)
	}
	defer s.Close()
	cfg, err := currentConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A process given ServiceFlag that the SCM did not start (the service's
// command line pasted into a console) is told so and runs in the
// foreground: handled is false and the agent was not run under svc.Run.
func TestServiceFlagWithoutTheSCM(t *testing.T) {
	ran := false
	handled, err := RunAsWindowsServiceIfNeeded("OctopusDeploy Tentacle: not-a-service", true, func(context.Context) error {
		ran = true
		return nil
	})
	if handled || ran || err == nil || !strings.Contains(err.Error(), ServiceFlag+" was given but the Service Control Manager did not start this process") {
		t.Fatalf("handled %v, ran %v, err %v", handled, ran, err)
	}
}
