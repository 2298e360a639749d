package contracts

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/halibut"
)

// everyDTO is one value of every DTO type, with every field set.
func everyDTO() []halibut.WireTyped {
	name, pw, task := "Mutex", "secret", "ServerTasks-9"
	hash := "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	wait := 5 * time.Second
	at := time.Date(2026, 11, 24, 12, 0, 0, 123e6, time.UTC)
	ticket := ScriptTicket{TaskID: "Z7pQ2x"}
	logs := []ProcessOutput{{Source: SourceStdOut, Occurred: at, Text: "hello"}, {Source: SourceStdErr, Occurred: at, Text: "ünïcødé ✓"}}
	return []halibut.WireTyped{
		ticket,
		StartScriptCommand{ScriptBody: "echo 1", Isolation: FullIsolation, Scripts: map[string]string{"Bash": "echo b", "PowerShell": "Write-Host p"},
			Files: []ScriptFile{}, Arguments: []string{"-x", "y z"}, TaskID: &task, ScriptIsolationMutexTimeout: time.Minute, IsolationMutexName: &name},
		ScriptStatusRequest{Ticket: ticket, LastLogSequence: 7},
		CancelScriptCommand{Ticket: ticket, LastLogSequence: 8},
		CompleteScriptCommand{Ticket: ticket, LastLogSequence: 9},
		ScriptStatusResponse{Ticket: ticket, Logs: logs, NextLogSequence: 2, State: StateComplete, ExitCode: -46},
		StartScriptCommandV2{ScriptTicket: ticket, ScriptBody: "echo 2", TaskID: task, DurationToWaitForScriptToFinish: &wait,
			Isolation: NoIsolation, ScriptIsolationMutexTimeout: NoMutexTimeout, IsolationMutexName: &name,
			Scripts: map[string]string{"Bash": "b"}, Files: []ScriptFile{{Name: "f.txt", EncryptionPassword: &pw}}, Arguments: []string{}},
		ScriptStatusRequestV2{Ticket: ticket, LastLogSequence: 1 << 40},
		CancelScriptCommandV2{Ticket: ticket, LastLogSequence: 3},
		CompleteScriptCommandV2{Ticket: ticket},
		ScriptStatusResponseV2{Ticket: ticket, Logs: logs, NextLogSequence: 2, State: StateRunning, ExitCode: 0},
		UploadResult{FullPath: "/home/Octopus/Files/x", Hash: &hash, Length: 1 << 33},
		CapabilitiesResponseV2{SupportedCapabilities: []string{ScriptServiceName, FileTransferServiceName, ScriptServiceV2Name}},
	}
}

// echoAll returns every argument it gets (as raw documents, so the return
// trip re-encodes exactly what arrived) and the SHA-256 of every stream.
func echoAll() *halibut.Service {
	svc := &halibut.Service{}
	svc.Handle("IEcho", "Echo", func(ctx context.Context, call *halibut.Call) (any, error) {
		out := halibut.Doc{}
		for i, p := range call.Params {
			if doc, ok := p.(halibut.Doc); ok && doc.TypeName() == halibut.DataStreamTypeName {
				var ds halibut.DataStream
				halibut.UnmarshalValue(doc, &ds)
				f, err := call.StreamBody(ds)
				if err != nil {
					return nil, err
				}
				h := sha256.New()
				n, _ := io.Copy(h, f)
				p = fmt.Sprintf("%d %x", n, h.Sum(nil))
			}
			out = append(out, halibut.Elem{Key: fmt.Sprint(i), Value: p})
		}
		return out, nil
	})
	return svc
}

// zeros is an endless reader of a repeating pattern, so 100 MB need no memory.
type pattern struct{ n int }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.n)
		p.n++
	}
	return len(b), nil
}

func patternSum(n int64) string {
	h := sha256.New()
	io.Copy(h, io.LimitReader(&pattern{}, n))
	return fmt.Sprintf("%d %x", n, h.Sum(nil))
}

func checkEveryDTO(t *testing.T, caller Caller, streamBytes int64) {
	t.Helper()
	dtos := everyDTO()
	params := make([]any, 0, len(dtos)+1)
	for _, d := range dtos {
		params = append(params, d)
	}
	params = append(params, halibut.NewDataStream(streamBytes, io.LimitReader(&pattern{}, streamBytes)))
	raw, err := caller.Call(t.Context(), "IEcho", "Echo", params, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := raw.(halibut.Doc)
	for i, want := range dtos {
		v, _ := doc.Get(fmt.Sprint(i))
		back := reflect.New(reflect.TypeOf(want))
		if err := halibut.UnmarshalValue(v, back.Interface()); err != nil {
			t.Errorf("%T: %v", want, err)
			continue
		}
		if !reflect.DeepEqual(back.Elem().Interface(), want) {
			t.Errorf("%T changed on the round trip:\n got %+v\nwant %+v", want, back.Elem().Interface(), want)
		}
		if typed, _ := v.(halibut.Doc); typed.TypeName() != want.WireTypeName() {
			t.Errorf("%T came back as $type %q", want, typed.TypeName())
		}
	}
	if got, _ := doc.Get(fmt.Sprint(len(dtos))); got != patternSum(streamBytes) {
		t.Errorf("stream: got %v want %v", got, patternSum(streamBytes))
	}
}

const hundredMB = 100 << 20

func TestEveryDTOAnd100MBOverListening(t *testing.T) {
	agentCert, serverCert := testCert(t), testCert(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	l := &halibut.Listener{Certificate: agentCert, Trust: halibut.NewTrustStore(halibut.Thumbprint(serverCert.Leaf)), Service: echoAll(), Limits: halibut.DefaultLimits()}
	go l.Serve(ln)
	t.Cleanup(func() { l.Shutdown(context.Background()) })
	client := &halibut.Client{Certificate: serverCert, Limits: halibut.DefaultLimits()}
	t.Cleanup(client.Close)
	checkEveryDTO(t, ListeningCaller{Client: client, Endpoint: halibut.Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: halibut.Thumbprint(agentCert.Leaf)}}, hundredMB)
}

func TestEveryDTOAnd100MBOverPolling(t *testing.T) {
	agentCert, serverCert := testCert(t), testCert(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ps := &halibut.PollingServer{Certificate: serverCert, Trust: halibut.NewTrustStore(halibut.Thumbprint(agentCert.Leaf)), Limits: halibut.DefaultLimits()}
	go ps.Serve(ln)
	t.Cleanup(func() { ps.Shutdown(context.Background()) })
	p := &halibut.Poller{Certificate: agentCert, Service: echoAll(), Limits: halibut.DefaultLimits(),
		ServerAddress: "https://" + ln.Addr().String() + "/", ServerThumbprint: halibut.Thumbprint(serverCert.Leaf),
		SubscriptionID: "poll://e2eabcdefghjkmnpqrs/", Connections: 1}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	checkEveryDTO(t, PollingCaller{Server: ps, Subscription: p.SubscriptionID, Thumbprint: halibut.Thumbprint(agentCert.Leaf)}, hundredMB)
}
