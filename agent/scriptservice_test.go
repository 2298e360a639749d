package agent

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/agent/scripts"
)

// envelopeBSON returns the decompressed envelope of the GetStatus response carrying st, as
// the agent sends it.
func envelopeBSON(t *testing.T, st scripts.Status) []byte {
	t.Helper()
	var wire bytes.Buffer
	resp := &halibut.ResponseMessage{ID: "IScriptServiceV2::GetStatusAsync[1] / 00000000-0000-0000-0000-000000000000", Result: statusV2(st)}
	if err := halibut.WriteMessage(&wire, resp, halibut.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(flate.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// The page bounds of agent/scripts are what a GetStatus response costs on the wire: a full
// page, of empty lines (most elements) or of text (most bytes), is sent and read back
// within half of Halibut's default MaxMessageElements (and the envelope's own few) and
// MaxMessageBytes, and LogRecordWireOverhead is no less than a record's real overhead.
func TestFullStatusPageFitsHalibutLimits(t *testing.T) {
	lim := halibut.DefaultLimits()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	page := func(n int, text string) scripts.Status {
		st := scripts.Status{Ticket: "Z7pQ3xW9kLmN2vB8cR4tY6", State: scripts.Running, NextLogSequence: int64(n)}
		st.Logs = make([]scripts.LogRecord, n)
		for i := range st.Logs {
			st.Logs[i] = scripts.LogRecord{Sequence: int64(i + 1), Source: scripts.StdErr, Occurred: at, Text: text}
		}
		return st
	}
	empty := envelopeBSON(t, page(0, ""))
	cases := map[string]scripts.Status{
		"most records": page(scripts.MaxStatusLogRecordsLimit, ""),
		// Records of 1 KiB up to MaxStatusLogBytesLimit by the estimate.
		"most bytes": page(scripts.MaxStatusLogBytesLimit/(1024+scripts.LogRecordWireOverhead), strings.Repeat("x", 1024)),
	}
	for name, st := range cases {
		body := envelopeBSON(t, st)
		estimate := 0
		for _, l := range st.Logs {
			estimate += len(l.Text) + scripts.LogRecordWireOverhead
		}
		if real := len(body) - len(empty); real > estimate {
			t.Errorf("%s: %d records take %d bytes on the wire, estimated %d", name, len(st.Logs), real, estimate)
		}
		if len(body) > lim.MaxMessageBytes/2 {
			t.Errorf("%s: the envelope is %d bytes, over half of MaxMessageBytes (%d)", name, len(body), lim.MaxMessageBytes)
		}
		half := lim
		half.MaxMessageElements = lim.MaxMessageElements/2 + 16
		if _, err := halibut.ParseDoc(body, half); err != nil {
			t.Errorf("%s: reading it back with half of MaxMessageElements: %v", name, err)
		}
	}
	// A record is four elements: the page needs more than 4 per record.
	tight := lim
	tight.MaxMessageElements = 4 * scripts.MaxStatusLogRecordsLimit
	if _, err := halibut.ParseDoc(envelopeBSON(t, cases["most records"]), tight); !errors.Is(err, halibut.ErrMessageTooLarge) {
		t.Errorf("a full page of empty lines has more than 4 elements a record: %v", err)
	}
}
