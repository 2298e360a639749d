package halibut

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// Benchmarks of the message layer for the two messages that dominate real traffic: a
// StartScript request (with one small script file as a data stream) and a GetStatus response
// carrying a batch of log lines. Run with `go test -bench . -benchmem ./agent/halibut/`.

var benchScriptFileBody = bytes.Repeat([]byte(`{"Octopus.Action.Name":"Deploy web"},`), 64)

func BenchmarkWriteStartScriptRequest(b *testing.B) {
	lim := DefaultLimits()
	req := typicalStartScriptRequest(b, benchScriptFileBody)
	body := bytes.NewReader(benchScriptFileBody)
	req.Params[0].(startScriptCommandV2).Files[0].Contents.Body = body
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(benchScriptFileBody)
		if err := WriteMessage(io.Discard, req, lim); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadStartScriptRequest(b *testing.B) {
	lim := DefaultLimits()
	wire := writeMessage(b, typicalStartScriptRequest(b, benchScriptFileBody))
	src := bytes.NewReader(wire)
	br := bufio.NewReader(src)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(wire)
		br.Reset(src)
		in, err := ReadMessage(br, lim)
		if err != nil {
			b.Fatal(err)
		}
		req, err := in.Request()
		if err != nil {
			b.Fatal(err)
		}
		var cmd startScriptCommandV2
		if err := UnmarshalValue(req.Params[0], &cmd); err != nil {
			b.Fatal(err)
		}
		if err := in.ReceiveStreams(func(_ DataStream, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteStatusResponse(b *testing.B) {
	lim := DefaultLimits()
	resp := typicalStatusResponse(100)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteMessage(io.Discard, resp, lim); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadStatusResponse(b *testing.B) {
	lim := DefaultLimits()
	wire := writeMessage(b, typicalStatusResponse(100))
	src := bytes.NewReader(wire)
	br := bufio.NewReader(src)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(wire)
		br.Reset(src)
		in, err := ReadMessage(br, lim)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := in.Response()
		if err != nil {
			b.Fatal(err)
		}
		var status scriptStatusResponseV2
		if err := UnmarshalValue(resp.Result, &status); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDataStreamThroughput measures a 16 MiB upload's framing overhead (no TLS).
func BenchmarkDataStreamThroughput(b *testing.B) {
	lim := DefaultLimits()
	payload := make([]byte, 16<<20)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(WriteMessage(pw, &ResponseMessage{Result: DataStreamFromBytes(payload)}, lim))
		}()
		in, err := ReadMessage(bufio.NewReader(pr), lim)
		if err != nil {
			b.Fatal(err)
		}
		if err := in.ReceiveStreams(func(_ DataStream, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}
