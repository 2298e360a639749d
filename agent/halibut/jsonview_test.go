package halibut

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// Golden JSON views of typical messages, and the exact round trip back to bytes.
func TestJSONViewGoldens(t *testing.T) {
	details := "System.Reflection.TargetInvocationException: Exception has been thrown by the target of an invocation.\n ---> System.IO.IOException: disk full"
	errType := "Halibut.Exceptions.ServiceInvocationHalibutClientException"
	tests := []struct {
		golden string
		msg    any
	}{
		{"start-script-v2-request.json", typicalStartScriptRequest(t, []byte(`{"Octopus.Action.Name":"Hello"}`))},
		{"get-status-v2-response.json", typicalStatusResponse(3)},
		{"error-response.json", &ResponseMessage{ID: "IScriptServiceV2::StartScriptAsync[2] / 1b4e28ba-2fa1-11d2-883f-0016d3cca427", Error: &ServerError{Message: "disk full", Details: &details, HalibutErrorType: &errType}}},
		{"null-request.json", nil},
		{"upload-file-request.json", &RequestMessage{
			ID: "IFileTransferService::UploadFileAsync[1] / 00000000-0000-0000-0000-000000000001", ActivityID: mustGuid(t, "00000000-0000-0000-0000-000000000001"),
			Endpoint: NewServiceEndPoint("poll://sq-tentacle01/", "", DefaultLimits()),
			Service:  "IFileTransferService", Method: "UploadFile",
			Params: []any{`Files\pkg.1.0.0.nupkg`, &DataStream{ID: mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b"), Length: 5, Body: strings.NewReader("\x00\x01PK\xff")}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			wire := writeMessage(t, tt.msg)
			var view bytes.Buffer
			if err := MessageToJSON(&view, bufio.NewReader(bytes.NewReader(wire)), DefaultLimits()); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.golden, view.Bytes())
			if !json.Valid(view.Bytes()) {
				t.Fatalf("the view is not valid JSON:\n%s", view.Bytes())
			}
			var back bytes.Buffer
			if err := MessageFromJSON(&back, bytes.NewReader(view.Bytes()), DefaultLimits()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Bytes(), wire) {
				t.Fatalf("JSON → bytes is not exact:\n got % x\nwant % x", back.Bytes(), wire)
			}
		})
	}
}

// Every BSON value the dialect has survives Doc → JSON → Doc → BSON byte for byte,
// including the awkward ones.
func TestJSONViewValueRoundTrip(t *testing.T) {
	doc := Doc{
		{"$type", "A.B, C"},
		{"int32", int32(math.MinInt32)},
		{"int64", int64(math.MaxInt64)},
		{"double", 0.1},
		{"negzero", math.Copysign(0, -1)},
		{"nan", math.NaN()},
		{"inf", math.Inf(-1)},
		{"date", NewDateTime(fixedTime)},
		{"farDate", DateTime(math.MinInt64)},
		{"guid", NewGuid()},
		{"bin", Binary{Subtype: 0x80, Data: []byte{0, 1}}},
		{"legacyGuid", Binary{Subtype: 3, Data: make([]byte, 16)}},
		{"str", "quotes \" backslash \\ newline \n tab \t nul \x00 del \x7f <html> é 😀"},
		{"null", nil},
		{"bools", []any{true, false}},
		{"empty", Doc{}},
		{"emptyArr", []any{}},
		{"collides", Doc{{"$numberLong", "1"}}},
		{"collidesDoc", Doc{{"$document", Doc{{"$guid", "x"}}}}},
		{"dup", int32(1)},
		{"dup", int32(2)},
		{"", "empty key"},
	}
	want := mustBSON(t, doc)
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var back Doc
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if got := mustBSON(t, back); !bytes.Equal(got, want) {
		t.Fatalf("round trip changed the BSON\n%s", js)
	}
}

func TestJSONViewSpellings(t *testing.T) {
	tests := []struct {
		value any
		json  string
	}{
		{int32(5), `5`},
		{int64(5), `{"$numberLong":"5"}`},
		{1.5, `{"$numberDouble":"1.5"}`},
		{math.Inf(1), `{"$numberDouble":"Infinity"}`},
		{mustGuid(t, "9a4b47b7-7463-4740-842e-eb1da0ade39b"), `{"$guid":"9a4b47b7-7463-4740-842e-eb1da0ade39b"}`},
		{NewDateTime(time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)), `{"$date":"2026-01-02T03:04:05.678Z"}`},
		{DateTime(-62135596800001), `{"$date":{"$numberLong":"-62135596800001"}}`},
		{Binary{Subtype: 0, Data: []byte("hi")}, `{"$binary":{"base64":"aGk=","subType":"00"}}`},
		{"<b>", `"<b>"`},
	}
	for _, tt := range tests {
		js, err := Doc{{"v", tt.value}}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		compact := strings.ReplaceAll(string(js), ": ", ":")
		compact = strings.ReplaceAll(compact, ", ", ",")
		if want := `{"v":` + tt.json + `}`; compact != want {
			t.Errorf("%#v → %s, want %s", tt.value, compact, want)
		}
	}
}

func TestJSONViewRejects(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"plain non-int32", `{"v": 3000000000}`, "not an int32"},
		{"plain fraction", `{"v": 1.5}`, "not an int32"},
		{"bad long", `{"v": {"$numberLong": 5}}`, "want the int64 as a string"},
		{"bad guid", `{"v": {"$guid": "nope"}}`, "invalid Guid"},
		{"bad date", `{"v": {"$date": "yesterday"}}`, "cannot parse"},
		{"bad binary", `{"v": {"$binary": {"base64": "!!", "subType": "00"}}}`, "illegal base64"},
		{"binary without subtype", `{"v": {"$binary": {"base64": ""}}}`, "both required"},
		{"not an object", `[1]`, "want an object"},
		{"trailing", `{} {}`, "trailing data"},
		{"broken", `{"v": `, "JSON view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Doc
			err := json.Unmarshal([]byte(tt.json), &d)
			if tt.name == "trailing" || tt.name == "broken" {
				err = d.UnmarshalJSON([]byte(tt.json))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMessageFromJSONChecksStreams(t *testing.T) {
	id := "9a4b47b7-7463-4740-842e-eb1da0ade39b"
	envelope := `"envelope": {"Message": {"$type": "Halibut.Transport.Protocol.ResponseMessage, Halibut", "id": "x", "error": null,
		"result": {"$type": "Halibut.DataStream, Halibut", "id": {"$guid": "` + id + `"}, "length": {"$numberLong": "3"}}}}`
	tests := []struct {
		name, streams, want string
	}{
		{"ok", `[{"id": "` + id + `", "length": 3, "base64": "YWJj"}]`, ""},
		{"missing", `[]`, "has no payload"},
		{"unannounced", `[{"id": "` + id + `", "length": 3, "base64": "YWJj"}, {"id": "00000000-0000-0000-0000-000000000000", "length": 0, "base64": ""}]`, "not announced"},
		{"wrong length", `[{"id": "` + id + `", "length": 2, "base64": "YWI="}]`, "announces 3"},
		{"payload size", `[{"id": "` + id + `", "length": 3, "base64": "YWI="}]`, "length says 3"},
		{"unknown key", `[{"id": "` + id + `", "length": 3, "base64": "YWJj", "text": "abc"}]`, "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := MessageFromJSON(&out, strings.NewReader(`{`+envelope+`, "dataStreams": `+tt.streams+`}`), DefaultLimits())
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	var out bytes.Buffer
	if err := MessageFromJSON(&out, strings.NewReader(`{"dataStreams": []}`), DefaultLimits()); err == nil {
		t.Fatal("a view without an envelope was accepted")
	}
	if err := MessageFromJSON(&out, strings.NewReader(`{"envelope": {"Message": null}, "extra": 1}`), DefaultLimits()); err == nil {
		t.Fatal("an unknown top-level key was accepted")
	}
}
