package contracts

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/halibut"
)

// jsonOf renders v as it sits in an `object` slot (with $type), via BSON,
// so the test sees exactly what goes on the wire.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := halibut.Marshal(&halibut.RequestMessage{Params: []any{v}})
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Params []any `halibut:"params"`
	}
	if err := halibut.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(req.Params[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Upstream's own JSON renderings of legacy DTOs (reference §10.3) pin names,
// order, enums as numbers and TimeSpan text. Our JSON view marks BSON int64
// values as {"$numberLong": ...} so that the BSON width survives a round trip;
// upstream's JSON has the bare number there.
func TestLegacyDTOsMatchUpstreamShapes(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{CancelScriptCommand{Ticket: ScriptTicket{TaskID: "F12"}, LastLogSequence: 12},
			`{"$type":"Octopus.Shared.Contracts.CancelScriptCommand, Octopus.Shared","Ticket":{"TaskId":"F12"},"LastLogSequence":{"$numberLong":"12"}}`},
		{StartScriptCommand{ScriptBody: "echo", Isolation: FullIsolation, Scripts: map[string]string{"Bash": "bob"}, Arguments: []string{"a"}, ScriptIsolationMutexTimeout: time.Minute},
			`{"$type":"Octopus.Shared.Contracts.StartScriptCommand, Octopus.Shared","ScriptBody":"echo","Isolation":1,"Scripts":{"Bash":"bob"},"Files":[],"Arguments":["a"],"TaskId":null,"ScriptIsolationMutexTimeout":"00:01:00","IsolationMutexName":null}`},
		{CompleteScriptCommandV2{Ticket: ScriptTicket{TaskID: "T"}},
			`{"$type":"Octopus.Tentacle.Contracts.ScriptServiceV2.CompleteScriptCommandV2, Octopus.Tentacle.Contracts","Ticket":{"TaskId":"T"}}`},
		{CapabilitiesResponseV2{SupportedCapabilities: []string{"IScriptService", "IFileTransferService", "IScriptServiceV2"}},
			`{"$type":"Octopus.Tentacle.Contracts.Capabilities.CapabilitiesResponseV2, Octopus.Tentacle.Contracts","SupportedCapabilities":["IScriptService","IFileTransferService","IScriptServiceV2"]}`},
	} {
		if got := jsonOf(t, tc.v); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	if got := jsonOf(t, StartScriptCommandV2{ScriptIsolationMutexTimeout: NoMutexTimeout}); !strings.Contains(got, `"ScriptIsolationMutexTimeout":"24.20:31:23.6470000"`) {
		t.Errorf("no-timeout TimeSpan: %s", got)
	}
}

func testCert(t *testing.T) *tls.Certificate {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// fakeAgent implements the services in memory.
type fakeAgent struct {
	dir     string
	started []StartScriptCommandV2
	fileGot string
}

func (f *fakeAgent) StartScript(ctx context.Context, cmd StartScriptCommandV2) (ScriptStatusResponseV2, error) {
	f.started = append(f.started, cmd)
	var text string
	if len(cmd.Files) > 0 {
		body, err := StreamBody(ctx, cmd.Files[0].Contents)
		if err != nil {
			return ScriptStatusResponseV2{}, err
		}
		b, _ := io.ReadAll(body)
		f.fileGot = string(b)
		text = cmd.Files[0].Name
	}
	return ScriptStatusResponseV2{Ticket: cmd.ScriptTicket, State: StateRunning, NextLogSequence: 1,
		Logs: []ProcessOutput{{Source: SourceStdOut, Occurred: time.Unix(1700000000, 0).UTC(), Text: text}}}, nil
}
func (f *fakeAgent) GetStatus(ctx context.Context, req ScriptStatusRequestV2) (ScriptStatusResponseV2, error) {
	return ScriptStatusResponseV2{Ticket: req.Ticket, State: StateComplete, ExitCode: 3, NextLogSequence: req.LastLogSequence}, nil
}
func (f *fakeAgent) CancelScript(ctx context.Context, cmd CancelScriptCommandV2) (ScriptStatusResponseV2, error) {
	return ScriptStatusResponseV2{}, errors.New("nothing to cancel")
}
func (f *fakeAgent) CompleteScript(ctx context.Context, cmd CompleteScriptCommandV2) error {
	return nil
}
func (f *fakeAgent) UploadFile(ctx context.Context, path string, content io.Reader, length int64) (UploadResult, error) {
	full := filepath.Join(f.dir, path)
	out, _ := os.Create(full)
	defer out.Close()
	h := sha1.New()
	n, err := io.Copy(io.MultiWriter(out, h), content)
	sum := hex.EncodeToString(h.Sum(nil))
	return UploadResult{FullPath: full, Hash: &sum, Length: n}, err
}
func (f *fakeAgent) DownloadFile(ctx context.Context, path string) (*halibut.DataStream, error) {
	fh, err := os.Open(filepath.Join(f.dir, path))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, _ := fh.Stat()
	return halibut.NewDataStream(st.Size(), fh), nil
}
func (f *fakeAgent) GetCapabilities(ctx context.Context) (CapabilitiesResponseV2, error) {
	return CapabilitiesResponseV2{SupportedCapabilities: []string{ScriptServiceName, FileTransferServiceName, ScriptServiceV2Name}}, nil
}

func TestTypedServicesOverARealListener(t *testing.T) {
	agentCert, serverCert := testCert(t), testCert(t)
	fa := &fakeAgent{dir: t.TempDir()}
	svc := &halibut.Service{}
	RegisterScriptServiceV2(svc, fa)
	RegisterFileTransferService(svc, fa)
	RegisterCapabilitiesServiceV2(svc, fa)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	l := &halibut.Listener{Certificate: agentCert, Trust: halibut.NewTrustStore(halibut.Thumbprint(serverCert.Leaf)), Service: svc, Limits: halibut.DefaultLimits()}
	go l.Serve(ln)
	t.Cleanup(func() { l.Shutdown(context.Background()) })
	client := &halibut.Client{Certificate: serverCert, Limits: halibut.DefaultLimits()}
	t.Cleanup(client.Close)
	caller, err := NewCaller("https://"+ln.Addr().String()+"/", halibut.Thumbprint(agentCert.Leaf), client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	caps, err := CapabilitiesClient{caller}.GetCapabilities(ctx)
	if err != nil || len(caps.SupportedCapabilities) != 3 {
		t.Fatalf("%v %v", caps, err)
	}
	scripts := ScriptServiceV2Client{caller}
	wait := 5 * time.Second
	resp, err := scripts.StartScript(ctx, StartScriptCommandV2{
		ScriptTicket: ScriptTicket{TaskID: "abc"}, ScriptBody: "echo hi", TaskID: "ServerTasks-1",
		DurationToWaitForScriptToFinish: &wait, ScriptIsolationMutexTimeout: NoMutexTimeout,
		Files: []ScriptFile{{Name: "data.txt", Contents: halibut.DataStreamFromBytes([]byte("file body"))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.State != StateRunning || len(resp.Logs) != 1 || resp.Logs[0].Text != "data.txt" || !resp.Logs[0].Occurred.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("start response %+v", resp)
	}
	if got := fa.started[0]; got.ScriptBody != "echo hi" || *got.DurationToWaitForScriptToFinish != wait || got.ScriptIsolationMutexTimeout != NoMutexTimeout || fa.fileGot != "file body" {
		t.Errorf("agent received %+v, file %q", got, fa.fileGot)
	}
	st, err := scripts.GetStatus(ctx, ScriptStatusRequestV2{Ticket: ScriptTicket{TaskID: "abc"}, LastLogSequence: 1})
	if err != nil || st.State != StateComplete || st.ExitCode != 3 {
		t.Errorf("status %+v %v", st, err)
	}
	if _, err := scripts.CancelScript(ctx, CancelScriptCommandV2{}); err == nil || !strings.Contains(err.Error(), "nothing to cancel") {
		t.Errorf("cancel error: %v", err)
	}
	if err := scripts.CompleteScript(ctx, CompleteScriptCommandV2{Ticket: ScriptTicket{TaskID: "abc"}}); err != nil {
		t.Error(err)
	}

	files := FileTransferClient{caller}
	payload := bytes.Repeat([]byte("x"), 1<<20)
	up, err := files.UploadFile(ctx, "pkg.nupkg", bytes.NewReader(payload), int64(len(payload)))
	sum := sha1.Sum(payload)
	if err != nil || up.Length != 1<<20 || *up.Hash != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload %+v %v", up, err)
	}
	var buf bytes.Buffer
	found, n, err := files.DownloadFile(ctx, "pkg.nupkg", &buf)
	if err != nil || !found || n != 1<<20 || !bytes.Equal(buf.Bytes(), payload) {
		t.Errorf("download: %v %d %v", found, n, err)
	}
	found, _, err = files.DownloadFile(ctx, "missing", io.Discard)
	if err != nil || found {
		t.Errorf("missing file: %v %v", found, err)
	}

	// A V1 DTO sent with its current (non-legacy) name is accepted; a wrong type is refused.
	RegisterScriptService(svc, v1Agent{})
	v1 := halibut.Doc{{Key: "$type", Value: currentName(typeStatusQ)}, {Key: "Ticket", Value: halibut.Doc{{Key: "TaskId", Value: "x"}}}, {Key: "LastLogSequence", Value: int64(4)}}
	raw, err := caller.Call(ctx, ScriptServiceName, "GetStatus", []any{v1}, nil)
	if err != nil {
		t.Fatalf("current-namespace V1 type refused: %v", err)
	}
	var v1resp ScriptStatusResponse
	if err := halibut.UnmarshalValue(raw, &v1resp); err != nil || v1resp.NextLogSequence != 4 {
		t.Errorf("%+v %v", v1resp, err)
	}
	_, err = caller.Call(ctx, ScriptServiceV2Name, "GetStatus", []any{CancelScriptCommand{}}, nil)
	var se *halibut.ServerError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "expected Octopus.Tentacle.Contracts.ScriptServiceV2.ScriptStatusRequestV2") {
		t.Errorf("wrong argument type: %v", err)
	}
}

type v1Agent struct{}

func (v1Agent) StartScript(ctx context.Context, cmd StartScriptCommand) (ScriptTicket, error) {
	return ScriptTicket{TaskID: "t"}, nil
}
func (v1Agent) GetStatus(ctx context.Context, req ScriptStatusRequest) (ScriptStatusResponse, error) {
	return ScriptStatusResponse{Ticket: req.Ticket, NextLogSequence: req.LastLogSequence, State: StateComplete}, nil
}
func (v1Agent) CancelScript(ctx context.Context, cmd CancelScriptCommand) (ScriptStatusResponse, error) {
	return ScriptStatusResponse{}, nil
}
func (v1Agent) CompleteScript(ctx context.Context, cmd CompleteScriptCommand) (ScriptStatusResponse, error) {
	return ScriptStatusResponse{}, nil
}
