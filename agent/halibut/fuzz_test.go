package halibut

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// Fuzz targets for every decoder fed by network bytes (and the JSON view, fed by operators).
// Run one with e.g. `go test -fuzz=FuzzReadMessage -fuzztime=1m ./agent/halibut/`.

// fuzzLimits keeps each input cheap while exercising every bound.
func fuzzLimits() Limits {
	l := DefaultLimits()
	l.MaxMessageBytes = 1 << 16
	l.MaxCompressedMessageBytes = 1 << 16
	l.MaxNestingDepth = 16
	l.MaxMessageElements = 4096
	l.MaxDataStreamLength = 1 << 16
	l.MaxDataStreamsPerMessage = 8
	l.DataStreamBufferSize = 512
	l.WriteBufferSize = 512
	return l
}

func seedMessages(f *testing.F) [][]byte {
	seeds := [][]byte{
		nil,
		unhex(f, "e3636060e0f24d2d2e4e4c4f65600000"), // §10.5
		unhex(f, "ab60606060f24d2d2e4e4c4f6548037282520b52134b32f3d2150a328a128b53154a32124b1492f3730b8a80aa528bf514a8a082810100"), // §10.2
		readGolden(f, "start-script-v2-request.bin"),
		readGolden(f, "start-script-v2-request-deflated.bin"),
	}
	for _, m := range []any{nil, typicalStatusResponse(2), &ResponseMessage{ID: "x", Result: DataStreamFromBytes([]byte("abc"))},
		&RequestMessage{Params: []any{"p", DataStreamFromBytes(nil), DataStreamFromBytes([]byte{1})}}} {
		seeds = append(seeds, writeMessage(f, m))
	}
	return seeds
}

func FuzzReadMessage(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ReadMessage(bufio.NewReader(bytes.NewReader(data)), lim)
		if err != nil {
			return
		}
		if req, err := in.Request(); err == nil && req != nil {
			for _, p := range req.Params {
				var cmd startScriptCommandV2
				_ = UnmarshalValue(p, &cmd)
			}
		}
		if resp, err := in.Response(); err == nil && resp != nil {
			var status scriptStatusResponseV2
			_ = UnmarshalValue(resp.Result, &status)
		}
		_ = in.ReceiveStreams(func(ds DataStream, r io.Reader) error {
			n, err := io.Copy(io.Discard, r)
			if err == nil && n != ds.Length {
				t.Fatalf("stream %s delivered %d bytes, declared %d", ds.ID, n, ds.Length)
			}
			return err
		})
		// Whatever we accepted, we can write again and read back identically.
		out, err := (Doc{{"Message", in.Message}}).AppendBSON(nil)
		if err != nil {
			t.Fatalf("re-encoding an accepted envelope: %v", err)
		}
		if _, err := ParseDoc(out, lim); err != nil {
			t.Fatalf("re-encoded envelope does not parse: %v", err)
		}
	})
}

func FuzzParseDoc(f *testing.F) {
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Add(unhex(f, "0e000000 0a 4d65737361676500 00"))
	f.Add(readGolden(f, "string-envelope.bson"))
	for _, m := range []any{typicalStartScriptRequest(f, []byte("x")), typicalStatusResponse(3)} {
		body, _, err := encodeEnvelope(m, DefaultLimits())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseDoc(data, lim)
		if err != nil {
			return
		}
		// Accepted input re-encodes to a fixed point, and the JSON view round-trips it exactly.
		once, err := doc.AppendBSON(nil)
		if err != nil {
			t.Fatalf("AppendBSON of a parsed document: %v", err)
		}
		again, err := ParseDoc(once, lim)
		if err != nil {
			t.Fatalf("re-encoded document does not parse: %v", err)
		}
		twice, _ := again.AppendBSON(nil)
		if !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not a fixed point")
		}
		js, err := doc.MarshalJSON()
		if err != nil {
			t.Fatalf("JSON view: %v", err)
		}
		var back Doc
		if err := back.UnmarshalJSON(js); err != nil {
			t.Fatalf("JSON view does not parse back: %v\n%s", err, js)
		}
		viaJSON, err := back.AppendBSON(nil)
		if err != nil || !bytes.Equal(viaJSON, once) {
			t.Fatalf("JSON view round trip changed the BSON (%v)\n%s", err, js)
		}
	})
}

func FuzzDocJSON(f *testing.F) {
	for _, name := range []string{"start-script-v2-request.json", "error-response.json"} {
		f.Add(readGolden(f, name))
	}
	f.Add([]byte(`{"a": {"$numberLong": "1"}, "b": {"$document": {"$guid": "x"}}, "c": [1, {"$date": "2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"$binary": {"base64": "AA==", "subType": "04"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc Doc
		if err := doc.UnmarshalJSON(data); err != nil {
			return
		}
		b, err := doc.AppendBSON(nil)
		if err != nil {
			return // e.g. a NUL in a key: refused at encoding, which is fine
		}
		js, err := doc.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a parsed view: %v", err)
		}
		var back Doc
		if err := back.UnmarshalJSON(js); err != nil {
			t.Fatalf("our own view does not parse: %v\n%s", err, js)
		}
		b2, _ := back.AppendBSON(nil)
		if !bytes.Equal(b, b2) {
			t.Fatalf("view round trip changed the BSON\n%s", js)
		}
	})
}

func FuzzParseGuid(f *testing.F) {
	f.Add("9a4b47b7-7463-4740-842e-eb1da0ade39b")
	f.Add("{9a4b47b7-7463-4740-842e-eb1da0ade39b}")
	f.Add("9a4b47b774634740842eeb1da0ade39b")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGuid(s)
		if err != nil {
			return
		}
		back, err := ParseGuid(g.String())
		if err != nil || back != g {
			t.Fatalf("%q → %v → %v, %v", s, g, back, err)
		}
		b := g.DotNetBytes()
		if again, _ := GuidFromDotNetBytes(b[:]); again != g {
			t.Fatalf(".NET byte order round trip of %v gave %v", g, again)
		}
	})
}
