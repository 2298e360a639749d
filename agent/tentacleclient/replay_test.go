package tentacleclient

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// The captures in testdata/upstream-agent are one direction each of real
// connections between `tentacle remote` (or upstream's Halibut client) and
// upstream's own agent services (see the README there). The tests below
// play the recorded Tentacle side (s2c) to our client over real TLS on
// loopback, and compare what our client sends with what upstream's agent
// was sent (c2s).

// piece is one unit of a recorded direction: control text or a message.
type piece struct {
	control []byte      // preamble, identity line or control word, as recorded
	bson    []byte      // a message's envelope, inflated
	message halibut.Doc // the envelope's "Message"
}

// readCapture splits a recorded direction into its pieces.
func readCapture(t *testing.T, scenario, file string) []piece {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "upstream-agent", scenario, file))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	var out []piece
	for {
		head, _ := br.Peek(16)
		if len(head) == 0 {
			return out
		}
		if end := controlLength(head, br); end > 0 {
			b := make([]byte, end)
			io.ReadFull(br, b)
			out = append(out, piece{control: b})
			continue
		}
		// A message: one raw DEFLATE stream holding the BSON envelope. The
		// bufio.Reader is an io.ByteReader, so inflating stops at its end.
		body, err := io.ReadAll(flate.NewReader(br))
		if err != nil {
			t.Fatalf("%s/%s: inflating a message: %v", scenario, file, err)
		}
		doc, err := halibut.ParseDoc(body, halibut.DefaultLimits())
		if err != nil {
			t.Fatalf("%s/%s: %v", scenario, file, err)
		}
		msg, _ := doc.Get("Message")
		out = append(out, piece{bson: body, message: msg.(halibut.Doc)})
	}
}

// controlLength is the length of the control text at the head of br, or 0
// when a message starts there.
func controlLength(head []byte, br *bufio.Reader) int {
	for _, word := range []string{"MX\r\n\r\n", "MX\n\n", "NEXT\r\n", "PROCEED\r\n", "END\r\n"} {
		if bytes.HasPrefix(head, []byte(word)) {
			return len(word)
		}
	}
	if bytes.HasPrefix(head, []byte("MX-")) {
		all, _ := br.Peek(br.Buffered())
		if i := bytes.Index(all, []byte("\r\n\r\n")); i >= 0 {
			return i + 4
		}
	}
	return 0
}

func messages(ps []piece) []piece {
	var out []piece
	for _, p := range ps {
		if p.bson != nil {
			out = append(out, p)
		}
	}
	return out
}

// exchange is one request the replayed Tentacle expects and the response it
// plays back; a nil response closes the connection without answering, as a
// V1-only Tentacle does on a request whose types it does not know.
type exchange struct {
	request  halibut.Doc // recorded request message, to compare ours with
	response []byte      // recorded response envelope (BSON), or nil
}

// exchanges pairs the n-th recorded request with the n-th recorded response.
func exchanges(t *testing.T, scenario, conn string) []exchange {
	t.Helper()
	reqs := messages(readCapture(t, scenario, conn+".c2s.bin"))
	resps := messages(readCapture(t, scenario, conn+".s2c.bin"))
	var out []exchange
	for i, r := range reqs {
		ex := exchange{request: r.message}
		if i < len(resps) {
			ex.response = resps[i].bson
		}
		out = append(out, ex)
	}
	return out
}

// identityOf returns the recorded side's identity line (MX-SERVER ...).
func identityOf(t *testing.T, scenario, file string) []byte {
	t.Helper()
	for _, p := range readCapture(t, scenario, file) {
		if bytes.HasPrefix(p.control, []byte("MX-")) {
			return p.control
		}
	}
	t.Fatalf("%s/%s has no identity line", scenario, file)
	return nil
}

// replayTentacle accepts TLS connections on loopback and answers each
// request with the next recorded response, its id changed to the id of the
// request it answers (the one difference a replay needs: ids carry a fresh
// GUID per request). Everything else the client reads is upstream's bytes.
type replayTentacle struct {
	t        *testing.T
	cert     *tls.Certificate
	identity []byte
	ln       net.Listener
	stop     func() // stops accepting and waits for every connection to end

	mu       sync.Mutex
	script   []exchange
	received []halibut.Doc // request messages, in order
	hellos   [][]byte      // each connection's preamble and identity, as sent
	ends     int           // connections the client closed with END
	problems []string
}

func newReplayTentacle(t *testing.T, identity []byte, script ...exchange) *replayTentacle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replayTentacle{t: t, cert: testCertificate(t), identity: identity, ln: ln, script: script}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for {
			c, err := ln.Accept()
			if err != nil {
				wg.Wait()
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); r.serve(c) }()
		}
	}()
	r.stop = sync.OnceFunc(func() {
		ln.Close()
		<-done
	})
	t.Cleanup(func() {
		r.stop()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.problems {
			t.Error("replayed Tentacle: " + p)
		}
	})
	return r
}

func (r *replayTentacle) problem(format string, args ...any) {
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *replayTentacle) endpoint() halibut.Endpoint {
	return halibut.Endpoint{BaseURI: "https://" + r.ln.Addr().String() + "/", Thumbprint: halibut.Thumbprint(r.cert.Leaf)}
}

func (r *replayTentacle) serve(raw net.Conn) {
	defer raw.Close()
	c := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{*r.cert}, ClientAuth: tls.RequireAnyClientCert})
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	hello, err := readHello(br)
	if err != nil {
		r.problem("reading the client's preamble and identity: %v", err)
		return
	}
	r.mu.Lock()
	r.hellos = append(r.hellos, hello)
	r.mu.Unlock()
	if _, err := c.Write(r.identity); err != nil {
		return
	}
	for {
		msg, err := halibut.ReadMessage(br, halibut.DefaultLimits())
		if err != nil {
			r.problem("reading a request: %v", err)
			return
		}
		if err := msg.ReceiveStreams(nil); err != nil {
			r.problem("reading a request's streams: %v", err)
			return
		}
		req := msg.Message.(halibut.Doc)
		r.mu.Lock()
		r.received = append(r.received, req)
		var ex exchange
		ok := len(r.script) > 0
		if ok {
			ex, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		if !ok {
			r.problem("unexpected request %s", requestName(req))
			return
		}
		if ex.response == nil {
			return // dropped without an answer
		}
		id, _ := req.Get("id")
		out, err := withResponseID(ex.response, id.(string))
		if err != nil {
			r.problem("%v", err)
			return
		}
		w, _ := flate.NewWriter(c, flate.DefaultCompression)
		w.Write(out)
		if err := w.Close(); err != nil {
			return
		}
		word, err := br.ReadString('\n')
		switch {
		case err != nil:
			return
		case word == "END\r\n":
			r.mu.Lock()
			r.ends++
			r.mu.Unlock()
			return
		case word != "NEXT\r\n":
			r.problem("expected NEXT or END, got %q", word)
			return
		}
		if _, err := io.WriteString(c, "PROCEED\r\n"); err != nil {
			return
		}
	}
}

// readHello reads the preamble (MX) and the identity (MX-CLIENT ...).
func readHello(br *bufio.Reader) ([]byte, error) {
	var b []byte
	for blank := 0; blank < 2; {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return b, err
		}
		b = append(b, line...)
		if string(line) == "\r\n" || string(line) == "\n" {
			blank++
		}
	}
	return b, nil
}

// withResponseID replaces the recorded response id in an envelope's BSON by
// id. Request ids have one format (Service::MethodAsync[n] / GUID), so the
// two have the same length and the BSON's lengths stay right.
func withResponseID(envelope []byte, id string) ([]byte, error) {
	doc, err := halibut.ParseDoc(envelope, halibut.DefaultLimits())
	if err != nil {
		return nil, err
	}
	msg, _ := doc.Get("Message")
	old, _ := msg.(halibut.Doc).Get("id")
	if len(old.(string)) != len(id) {
		return nil, fmt.Errorf("recorded response %q and request %q have ids of different lengths", old, id)
	}
	if !strings.HasPrefix(id, strings.SplitN(old.(string), "[", 2)[0]+"[") {
		return nil, fmt.Errorf("the recorded response to %q answers a request for another method, %q", id, old)
	}
	return bytes.Replace(envelope, []byte(old.(string)), []byte(id), 1), nil
}

func requestName(req halibut.Doc) string {
	svc, _ := req.Get("service")
	m, _ := req.Get("method")
	return fmt.Sprintf("%v.%v", svc, m)
}

// checkRequests compares what the client sent with what was recorded: the
// same service, method and parameters (ids, activity ids and the endpoint
// naturally differ).
func (r *replayTentacle) checkRequests(t *testing.T, want ...halibut.Doc) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.received) != len(want) {
		var names []string
		for _, got := range r.received {
			names = append(names, requestName(got))
		}
		t.Fatalf("the client sent %d requests (%s), want %d", len(r.received), strings.Join(names, ", "), len(want))
	}
	for i, w := range want {
		got := r.received[i]
		if requestName(got) != requestName(w) {
			t.Errorf("request %d is %s, want %s", i+1, requestName(got), requestName(w))
			continue
		}
		gp, _ := got.Get("params")
		wp, _ := w.Get("params")
		gj, _ := json.Marshal(gp)
		wj, _ := json.Marshal(wp)
		if !bytes.Equal(gj, wj) {
			t.Errorf("%s parameters differ from the recorded ones:\n got %s\nwant %s", requestName(got), gj, wj)
		}
	}
}

func testCertificate(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "replay"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// clientFor is our Halibut client, as `tentacle remote` makes it, towards r.
func clientFor(t *testing.T, r *replayTentacle) (Client, *halibut.Client) {
	t.Helper()
	hc := &halibut.Client{Certificate: testCertificate(t), Limits: halibut.DefaultLimits()}
	t.Cleanup(hc.Close)
	return Client{Caller: contracts.ListeningCaller{Client: hc, Endpoint: r.endpoint()}}, hc
}

// recordedHello is what our client sent first in a capture it made.
func recordedHello(t *testing.T, scenario, file string) []byte {
	t.Helper()
	var b []byte
	for _, p := range readCapture(t, scenario, file) {
		if p.control == nil {
			break
		}
		b = append(b, p.control...)
	}
	return b
}

// Upstream's V1-only agent answers GetCapabilities with
// ServiceNotFoundHalibutClientException; the client concludes what
// upstream's does: IScriptService and IFileTransferService.
func TestReplayV1OnlyCapabilities(t *testing.T) {
	caps := exchanges(t, "v1only-capabilities", "conn-2")
	r := newReplayTentacle(t, identityOf(t, "v1only-capabilities", "conn-2.s2c.bin"), caps...)
	c, hc := clientFor(t, r)
	got, err := c.Capabilities(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Assumed || strings.Join(got.SupportedCapabilities, ",") != "IScriptService,IFileTransferService" {
		t.Errorf("capabilities %+v, want the assumed IScriptService,IFileTransferService", got)
	}
	if svc, err := PickScriptService(got); svc != ScriptServiceV1 || err != nil {
		t.Errorf("picked %v %v, want IScriptService", svc, err)
	}
	hc.Close()
	r.stop()
	r.checkRequests(t, caps[0].request)
	if want := recordedHello(t, "v1only-capabilities", "conn-2.c2s.bin"); !bytes.Equal(r.hellos[0], want) {
		t.Errorf("the client opened with %q, recorded %q", r.hellos[0], want)
	}
	// The error answer leaves the connection in step: the client pooled it
	// and said END on closing, as in the capture.
	if r.ends != 1 {
		t.Errorf("%d connections ended with END, want 1", r.ends)
	}
}

// After the fallback, a script runs with the legacy IScriptService: the
// same StartScript, GetStatus and CompleteScript (with Octopus.Shared type
// names) that upstream's own Halibut client sent to that agent, and the
// conclusions drawn from its answers.
func TestReplayV1OnlyRun(t *testing.T) {
	caps := exchanges(t, "v1only-capabilities", "conn-2")
	v1 := exchanges(t, "v1only-v1-scriptservice-by-halibut-client", "conn-2")
	if len(v1) != 3 {
		t.Fatalf("the V1 capture has %d exchanges, want StartScript, GetStatus, CompleteScript", len(v1))
	}
	r := newReplayTentacle(t, identityOf(t, "v1only-capabilities", "conn-2.s2c.bin"), append(caps, v1...)...)
	c, _ := clientFor(t, r)
	var lines []string
	res, err := c.Run(t.Context(), Command{Body: "echo out1; echo err1 1>&2; echo out2; exit 3", TaskID: "V1Probe", MutexTimeout: time.Minute},
		Observer{Logs: func(logs []contracts.ProcessOutput) {
			for _, l := range logs {
				if l.Source != contracts.SourceDebug && !strings.HasPrefix(l.Text, "##octopus") {
					lines = append(lines, fmt.Sprintf("%d:%s", l.Source, l.Text))
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Service != ScriptServiceV1 || res.Ticket.TaskID != "20261203062014-V1Probe-1" || res.ExitCode != 3 || res.CompleteErr != nil {
		t.Errorf("result %+v, want IScriptService, the Tentacle's ticket and exit code 3", res)
	}
	if got := strings.Join(lines, " "); got != "0:Acquiring isolation mutex RunningScript with NoIsolation in V1Probe 0:out1 0:out2 1:err1" {
		t.Errorf("log lines: %s", got)
	}
	r.checkRequests(t, caps[0].request, v1[0].request, v1[1].request, v1[2].request)
	for _, ex := range v1 {
		p, _ := ex.request.Get("params")
		typ := p.([]any)[0].(halibut.Doc).TypeName()
		if !strings.HasPrefix(typ, "Octopus.Shared.Contracts.") || !strings.HasSuffix(typ, ", Octopus.Shared") {
			t.Errorf("recorded V1 argument type %q is not a legacy name", typ)
		}
	}
}

// A Tentacle that lists IScriptServiceV2 gets V2 calls, as in the capture
// of upstream's full agent.
func TestReplayV2Run(t *testing.T) {
	caps := exchanges(t, "listen-capabilities", "conn-2")
	v2 := exchanges(t, "listen-exec-exit3", "conn-2")
	r := newReplayTentacle(t, identityOf(t, "listen-capabilities", "conn-2.s2c.bin"), append(caps, v2...)...)
	c, _ := clientFor(t, r)
	res, err := c.Run(t.Context(), Command{Body: "echo out1; echo err1 1>&2; echo out2; exit 3", Ticket: "5xMFb3iNkvnWklo8yxLDNw", WaitForFinish: time.Second}, Observer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Service != ScriptServiceV2 || res.ExitCode != 3 || res.CompleteErr != nil {
		t.Errorf("result %+v", res)
	}
	want := []halibut.Doc{caps[0].request}
	for _, ex := range v2 {
		want = append(want, ex.request)
	}
	r.checkRequests(t, want...)
}

// Upstream's V1-only agent closes the connection without a word on a
// request whose types it does not know. That is an error that says so; and
// a capabilities request dropped the same way (a Tentacle that stopped, a
// broken network) is an error too, never taken for a V1 Tentacle.
func TestReplayDroppedRequests(t *testing.T) {
	identity := identityOf(t, "v1only-exec", "conn-1.s2c.bin")
	dropped := exchanges(t, "v1only-exec", "conn-1")
	if len(dropped) != 1 || dropped[0].response != nil {
		t.Fatalf("v1only-exec should hold one unanswered request, has %d", len(dropped))
	}

	t.Run("V2 StartScript", func(t *testing.T) {
		r := newReplayTentacle(t, identity, dropped...)
		c, _ := clientFor(t, r)
		_, _, err := c.Start(t.Context(), ScriptServiceV2, Command{Body: "echo hi", Ticket: "dmt4t9iPWsjfcfakOOIzlA", WaitForFinish: time.Second})
		var nr *halibut.NoResponseError
		var step *StepError
		if !errors.As(err, &nr) || nr.Service != contracts.ScriptServiceV2Name || nr.Method != "StartScript" || !errors.As(err, &step) {
			t.Fatalf("got %v, want a NoResponseError for IScriptServiceV2.StartScript", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "closed the connection without answering IScriptServiceV2.StartScript") {
			t.Errorf("unclear error: %s", msg)
		}
		if want := recordedHello(t, "v1only-exec", "conn-1.c2s.bin"); !bytes.Equal(r.hellos[0], want) {
			t.Errorf("the client opened with %q, recorded %q", r.hellos[0], want)
		}
		r.checkRequests(t, dropped[0].request)
	})

	capsRequest := exchanges(t, "v1only-capabilities", "conn-2")[0].request
	t.Run("capabilities", func(t *testing.T) {
		r := newReplayTentacle(t, identity, exchange{request: capsRequest}, exchange{request: capsRequest})
		c, _ := clientFor(t, r)
		caps, err := c.Capabilities(t.Context())
		var nr *halibut.NoResponseError
		if !errors.As(err, &nr) || caps.Assumed {
			t.Fatalf("got %+v, %v; want an error, not the V1 fallback", caps, err)
		}
		if _, err := c.Run(t.Context(), Command{Body: "echo hi"}, Observer{}); err == nil {
			t.Fatal("Run went on after capabilities failed")
		}
		r.checkRequests(t, capsRequest, capsRequest)
	})

	t.Run("V2 listed, StartScript dropped", func(t *testing.T) {
		caps := exchanges(t, "listen-capabilities", "conn-2")
		r := newReplayTentacle(t, identity, caps[0], dropped[0])
		c, _ := clientFor(t, r)
		_, err := c.Run(t.Context(), Command{Body: "echo hi", Ticket: "dmt4t9iPWsjfcfakOOIzlA", WaitForFinish: time.Second}, Observer{})
		var step *StepError
		var nr *halibut.NoResponseError
		if !errors.As(err, &step) || step.Step != "starting the script with IScriptServiceV2" || !errors.As(err, &nr) {
			t.Fatalf("got %v", err)
		}
		r.checkRequests(t, caps[0].request, dropped[0].request)
	})
}
