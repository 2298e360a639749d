package halibut

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/halibut")

// goldenDir holds the wire fixtures shared with other packages.
const goldenDir = "../../testdata/halibut"

// checkGolden compares got with testdata/halibut/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update if the change is intended)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unhex decodes hex with optional spaces and newlines.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustGuid(t testing.TB, s string) Guid {
	t.Helper()
	g, err := ParseGuid(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// --- Test doubles of Tentacle DTOs (the real ones live in agent/contracts), shaped as
// reference/halibut-protocol.md §6.4 describes them. ---

type scriptTicket struct {
	TaskID string `halibut:"TaskId"`
}

type scriptFile struct {
	Name               string
	Contents           *DataStream
	EncryptionPassword *string
}

type startScriptCommandV2 struct {
	ScriptTicket                    scriptTicket
	ScriptBody                      string
	TaskID                          string `halibut:"TaskId"`
	DurationToWaitForScriptToFinish *time.Duration
	Isolation                       int32
	ScriptIsolationMutexTimeout     time.Duration
	IsolationMutexName              *string
	Scripts                         map[string]string `halibut:",nonnull"`
	Files                           []scriptFile      `halibut:",nonnull"`
	Arguments                       []string          `halibut:",nonnull"`
}

func (startScriptCommandV2) WireTypeName() string {
	return "Octopus.Tentacle.Contracts.ScriptServiceV2.StartScriptCommandV2, Octopus.Tentacle.Contracts"
}

type processOutput struct {
	Source   int32
	Occurred time.Time
	Text     string
}

type scriptStatusResponseV2 struct {
	Ticket          scriptTicket
	Logs            []processOutput
	NextLogSequence int64
	State           int32
	ExitCode        int32
}

func (scriptStatusResponseV2) WireTypeName() string {
	return "Octopus.Tentacle.Contracts.ScriptServiceV2.ScriptStatusResponseV2, Octopus.Tentacle.Contracts"
}

var fixedTime = time.Date(2026, 11, 24, 10, 30, 15, 123_000_000, time.UTC)

// typicalStartScriptRequest is what an Octopus Server sends to start a script (§6.5), with
// one script file carried as a data stream.
func typicalStartScriptRequest(t testing.TB, fileBody []byte) *RequestMessage {
	wait := 5 * time.Second
	mutex := "RunningScript"
	activity := mustGuid(t, "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
	return &RequestMessage{
		ID:         "IScriptServiceV2::StartScriptAsync[1] / " + activity.String(),
		ActivityID: activity,
		Endpoint:   NewServiceEndPoint("https://tentacle.example:10933/", "3D5C8B2E9F1A7C6D4B3E2F1A0B9C8D7E6F5A4B3C", DefaultLimits()),
		Service:    "IScriptServiceV2",
		Method:     "StartScript",
		Params: []any{startScriptCommandV2{
			ScriptTicket:                    scriptTicket{TaskID: "Z7pQ3xW9kLmN2vB8cR4tY6"},
			ScriptBody:                      "echo \"hello from $(hostname)\"\nexit 0\n",
			TaskID:                          "ServerTasks-123",
			DurationToWaitForScriptToFinish: &wait,
			Isolation:                       0,
			ScriptIsolationMutexTimeout:     time.Duration(1<<31-1) * time.Millisecond,
			IsolationMutexName:              &mutex,
			Scripts:                         map[string]string{},
			Files: []scriptFile{{
				Name:     "Variables.json",
				Contents: &DataStream{ID: mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b"), Length: int64(len(fileBody)), Body: bytes.NewReader(fileBody)},
			}},
			Arguments: []string{"-verbose"},
		}},
	}
}

// typicalStatusResponse is a GetStatus answer carrying n log lines.
func typicalStatusResponse(n int) *ResponseMessage {
	logs := make([]processOutput, n)
	for i := range logs {
		logs[i] = processOutput{Source: int32(i % 3), Occurred: fixedTime.Add(time.Duration(i) * time.Millisecond), Text: "Deploying package Acme.Web 1.2.3 to /var/www (step " + string(rune('a'+i%26)) + ")"}
	}
	return &ResponseMessage{
		ID: "IScriptServiceV2::GetStatusAsync[7] / 1b4e28ba-2fa1-11d2-883f-0016d3cca427",
		Result: scriptStatusResponseV2{
			Ticket:          scriptTicket{TaskID: "Z7pQ3xW9kLmN2vB8cR4tY6"},
			Logs:            logs,
			NextLogSequence: int64(n),
			State:           1,
			ExitCode:        0,
		},
	}
}
