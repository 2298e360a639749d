//go:build !windows

package main

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// followCounting follows a script like an Octopus Server does (GetStatus with the last
// NextLogSequence until Complete, then CompleteScript) and returns how many stdout lines of
// the script's own it saw and their bytes, keeping none of them.
func followCounting(t *testing.T, s contracts.ScriptServiceV2Client, ticket string) (lines, textBytes int, code int32) {
	t.Helper()
	ctx := context.Background()
	var seq int64
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := s.GetStatus(ctx, contracts.ScriptStatusRequestV2{Ticket: contracts.ScriptTicket{TaskID: ticket}, LastLogSequence: seq})
		if err != nil {
			t.Fatalf("GetStatus after %d: %v", seq, err)
		}
		for _, l := range st.Logs {
			if l.Source == contracts.SourceStdOut && !strings.HasPrefix(l.Text, "##octopus[") && !strings.HasPrefix(l.Text, "Acquired isolation mutex") {
				lines++
				textBytes += len(l.Text)
			}
		}
		seq = st.NextLogSequence
		if st.State == contracts.StateComplete {
			code = st.ExitCode
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("script %s: still %v after %d records", ticket, st.State, seq)
		}
		if len(st.Logs) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := s.CompleteScript(ctx, contracts.CompleteScriptCommandV2{Ticket: contracts.ScriptTicket{TaskID: ticket}}); err != nil {
		t.Fatal(err)
	}
	return lines, textBytes, code
}

// Two million short lines made every GetStatus fail (a 110 MB response over the 64 MiB
// message limit), so the task could never be followed nor its workspace deleted, and the
// agent grew to 627 MB; CompleteScript read a whole 400 MB log (1.22 GB). Now both a flood
// of short lines and one 100 MB line (agent/scripts tests 200 MB in-process) are followed
// to the end by the real agent, whose peak RSS (VmHWM) stays flat.
func TestAgentFollowsFloodsOfOutputWithFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("scripts print 2 million lines and a 100 MB line; skipped in -short mode")
	}
	a := newRealAgent(t)
	a.start()
	s := a.scripts()
	for _, tc := range []struct {
		ticket, body     string
		lines, textBytes int
	}{
		{"ShortLines", "yes | head -n 2000000", 2_000_000, 2_000_000},
		// Cut into records of MaxLineLength (1 MiB).
		{"LongLine", "head -c 100000000 /dev/zero | tr '\\0' x", (100_000_000 + 1<<20 - 1) / (1 << 20), 100_000_000},
	} {
		if _, err := s.StartScript(context.Background(), startCmd(tc.ticket, tc.body, contracts.NoIsolation)); err != nil {
			t.Fatal(err)
		}
		lines, text, code := followCounting(t, s, tc.ticket)
		if code != 0 || lines != tc.lines || text != tc.textBytes {
			t.Errorf("%s: exit %d, %d lines of %d bytes; want 0, %d lines of %d bytes", tc.ticket, code, lines, text, tc.lines, tc.textBytes)
		}
		if _, err := os.Stat(filepath.Join(a.home(), "Work", tc.ticket)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: workspace still there after CompleteScript: %v", tc.ticket, err)
		}
	}
	peak := rssKB(a.cmd.Process.Pid)
	t.Logf("agent peak RSS while following both: %d MiB", peak>>10)
	if peak > 150<<10 {
		t.Errorf("the agent's peak RSS was %d MiB: memory grows with output", peak>>10)
	}
}

// denseBomb is the deflated envelope {"Message": [4 million nulls with empty names]}: 8 MB
// of BSON in about 8 KB.
func denseBomb(t *testing.T) []byte {
	const n = 4 << 20
	body := make([]byte, 0, 20+2*n)
	body = append(body, 0, 0, 0, 0, 0x04)
	body = append(body, "Message\x00"...)
	arr := len(body)
	body = append(body, 0, 0, 0, 0)
	for range n {
		body = append(body, 0x0A, 0)
	}
	body = append(body, 0)
	binary.LittleEndian.PutUint32(body[arr:], uint32(len(body)-arr))
	body = append(body, 0)
	binary.LittleEndian.PutUint32(body, uint32(len(body)))
	var wire bytes.Buffer
	fw, _ := flate.NewWriter(&wire, flate.BestCompression)
	fw.Write(body)
	fw.Close()
	if wire.Len() > 10<<10 {
		t.Fatalf("the bomb compressed to %d bytes", wire.Len())
	}
	return wire.Bytes()
}

// sendRaw sends wire as one request on a fresh connection, as a trusted client, and
// returns once the agent has closed the connection.
func (a *realAgent) sendRaw(t *testing.T, wire []byte) error {
	cert := a.operator.TLS()
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", a.port), &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.WriteString(c, "MX\r\n\r\nMX-CLIENT 1.0\r\n\r\n"); err != nil {
		return err
	}
	if _, err := c.Write(wire); err != nil {
		return err
	}
	// The agent answers MX-SERVER, then closes the connection when it refuses the message.
	reply, err := io.ReadAll(c)
	if !strings.HasPrefix(string(reply), "MX-SERVER") {
		return fmt.Errorf("reply %q, %v", reply, err)
	}
	return nil
}

// Eight connections each sending ~8 KB that inflate to 4 million elements (500 MB each
// before MaxMessageElements was cut; 66 KB over 8 connections took 3.2 GB), and a 256 MiB
// sensitive script file (read whole to be encrypted: a 1 GB one took 4 GB): the real
// agent refuses the first, stores the second, and its peak RSS (VmHWM) stays flat.
func TestAgentMemoryStaysFlatUnderElementFloodsAndLargeSensitiveFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 8 deflate bombs and a 256 MiB file; skipped in -short mode")
	}
	a := newRealAgent(t)
	a.start()
	ctx := context.Background()

	bomb := denseBomb(t)
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- a.sendRaw(t, bomb) }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.scripts().GetStatus(ctx, contracts.ScriptStatusRequestV2{Ticket: contracts.ScriptTicket{TaskID: "Nothing"}}); err != nil {
		t.Fatalf("the agent does not serve after the bombs: %v", err)
	}
	afterFlood := rssKB(a.cmd.Process.Pid)

	const size = 256 << 20
	pw := "s3cret"
	cmd := startCmd("Sensitive", "stat -c %s secret.bin", contracts.NoIsolation)
	cmd.Files = []contracts.ScriptFile{{Name: "secret.bin", Contents: halibut.NewDataStream(size, io.LimitReader(zeroReader{}, size)), EncryptionPassword: &pw}}
	s := a.scripts()
	if _, err := s.StartScript(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	lines, code := runToCompletion(t, s, "Sensitive", 0)
	// "IV__", the IV, and the text padded to whole AES blocks.
	if want := fmt.Sprint(20 + (size/16+1)*16); code != 0 || len(lines) != 1 || lines[0] != want {
		t.Errorf("stored file: exit %d, %q; want a size of %s", code, lines, want)
	}
	if err := s.CompleteScript(ctx, contracts.CompleteScriptCommandV2{Ticket: contracts.ScriptTicket{TaskID: "Sensitive"}}); err != nil {
		t.Fatal(err)
	}

	peak := rssKB(a.cmd.Process.Pid)
	t.Logf("agent peak RSS: %d MiB after the 8 floods, %d MiB after the 256 MiB sensitive file too", afterFlood>>10, peak>>10)
	// MaxMessageElements refuses each flood after its bytes are inflated, MaxDecodingBytes
	// (128 MiB) bounds how many are inflated at once, and the file streams.
	if peak > 150<<10 {
		t.Errorf("the agent's peak RSS was %d MiB: memory is not bounded", peak>>10)
	}
}

// zeroReader reads zeros, cheaply even under the race detector.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
