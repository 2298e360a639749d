package agent

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/scripts"
)

// scriptServiceV2 is IScriptServiceV2 over the script manager.
type scriptServiceV2 struct{ m *scripts.Manager }

func (s scriptServiceV2) StartScript(ctx context.Context, cmd contracts.StartScriptCommandV2) (contracts.ScriptStatusResponseV2, error) {
	req, err := startRequest(ctx, cmd.ScriptTicket.TaskID, cmd.TaskID, cmd.ScriptBody, cmd.Scripts, cmd.Files, cmd.Arguments,
		cmd.Isolation, cmd.IsolationMutexName, cmd.ScriptIsolationMutexTimeout)
	if err != nil {
		return contracts.ScriptStatusResponseV2{}, err
	}
	if cmd.DurationToWaitForScriptToFinish != nil {
		req.WaitForFinish = *cmd.DurationToWaitForScriptToFinish
	}
	st, err := s.m.Start(ctx, req)
	if err != nil {
		return contracts.ScriptStatusResponseV2{}, err
	}
	return statusV2(st), nil
}

func (s scriptServiceV2) GetStatus(ctx context.Context, req contracts.ScriptStatusRequestV2) (contracts.ScriptStatusResponseV2, error) {
	st, err := s.m.Status(req.Ticket.TaskID, req.LastLogSequence)
	return statusV2(st), err
}

func (s scriptServiceV2) CancelScript(ctx context.Context, cmd contracts.CancelScriptCommandV2) (contracts.ScriptStatusResponseV2, error) {
	st, err := s.m.Cancel(cmd.Ticket.TaskID, cmd.LastLogSequence)
	return statusV2(st), err
}

func (s scriptServiceV2) CompleteScript(ctx context.Context, cmd contracts.CompleteScriptCommandV2) error {
	return s.m.Complete(cmd.Ticket.TaskID)
}

// scriptServiceV1 is the legacy IScriptService: the agent chooses the
// ticket, as upstream (yyyyMMddHHmmss-<task number>-<counter>).
type scriptServiceV1 struct {
	m       *scripts.Manager
	counter *atomic.Int64
}

func (s scriptServiceV1) StartScript(ctx context.Context, cmd contracts.StartScriptCommand) (contracts.ScriptTicket, error) {
	task := ""
	if cmd.TaskID != nil {
		task = *cmd.TaskID
	}
	ticket := fmt.Sprintf("%s-%s-%d", time.Now().UTC().Format("20060102150405"), strings.TrimPrefix(task, "ServerTasks-"), s.counter.Add(1))
	// The ticket names the workspace directory: keep it to the characters
	// scripts.ValidateTicket accepts.
	ticket = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, ticket)
	req, err := startRequest(ctx, ticket, task, cmd.ScriptBody, cmd.Scripts, cmd.Files, cmd.Arguments,
		cmd.Isolation, cmd.IsolationMutexName, cmd.ScriptIsolationMutexTimeout)
	if err != nil {
		return contracts.ScriptTicket{}, err
	}
	if _, err := s.m.Start(ctx, req); err != nil {
		return contracts.ScriptTicket{}, err
	}
	return contracts.ScriptTicket{TaskID: ticket}, nil
}

func (s scriptServiceV1) GetStatus(ctx context.Context, req contracts.ScriptStatusRequest) (contracts.ScriptStatusResponse, error) {
	st, err := s.m.Status(req.Ticket.TaskID, req.LastLogSequence)
	return statusV1(v1Unknown(st)), err
}

func (s scriptServiceV1) CancelScript(ctx context.Context, cmd contracts.CancelScriptCommand) (contracts.ScriptStatusResponse, error) {
	st, err := s.m.Cancel(cmd.Ticket.TaskID, cmd.LastLogSequence)
	return statusV1(v1Unknown(st)), err
}

func (s scriptServiceV1) CompleteScript(ctx context.Context, cmd contracts.CompleteScriptCommand) (contracts.ScriptStatusResponse, error) {
	st, err := s.m.CompleteWithStatus(cmd.Ticket.TaskID, cmd.LastLogSequence)
	return statusV1(v1Unknown(st)), err
}

// v1Unknown: V1 reports an unknown ticket as complete with exit code 0, as
// upstream (V1 had no state store).
func v1Unknown(st scripts.Status) scripts.Status {
	if st.State == scripts.Complete && st.ExitCode == scripts.ExitCodeUnknownScript {
		st.ExitCode = 0
	}
	return st
}

func startRequest(ctx context.Context, ticket, task, body string, variants map[string]string, files []contracts.ScriptFile, args []string,
	isolation contracts.ScriptIsolationLevel, mutex *string, mutexTimeout time.Duration) (scripts.StartRequest, error) {
	req := scripts.StartRequest{
		Ticket:       ticket,
		TaskID:       task,
		ScriptBody:   body,
		Scripts:      variants,
		Arguments:    args,
		Isolation:    scripts.Isolation(isolation),
		MutexTimeout: mutexTimeout,
	}
	if mutex != nil {
		req.MutexName = *mutex
	}
	for _, f := range files {
		var content io.Reader = strings.NewReader("")
		if f.Contents != nil {
			body, err := contracts.StreamBody(ctx, f.Contents)
			if err != nil {
				return req, fmt.Errorf("script file %s: %w", f.Name, err)
			}
			content = body
		}
		if f.EncryptionPassword != nil && *f.EncryptionPassword != "" {
			enc, err := encryptScriptFile(content, *f.EncryptionPassword)
			if err != nil {
				return req, fmt.Errorf("script file %s: %w", f.Name, err)
			}
			content = enc
		}
		req.Files = append(req.Files, scripts.ScriptFile{Name: f.Name, Contents: content})
	}
	return req, nil
}

// encryptScriptFile returns plain encrypted the way upstream stores a sensitive script
// file, so that Calamari can read it: "IV__", a random 16-byte IV, then AES-128-CBC with
// PKCS#7 padding, keyed by PBKDF2-SHA1(password, "Octopuss", 1000). It encrypts as it is
// read, a chunk at a time, so a file of any size costs the same small buffer.
func encryptScriptFile(plain io.Reader, password string) (io.Reader, error) {
	key, err := pbkdf2.Key(sha1.New, password, []byte("Octopuss"), 1000, 16)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	e := &cbcEncryptingReader{plain: plain, mode: cipher.NewCBCEncrypter(block, iv), buf: make([]byte, scriptFileChunkBytes+aes.BlockSize)}
	e.pending = append(append(e.buf[:0:0], "IV__"...), iv...)
	return e, nil
}

// scriptFileChunkBytes is how much plain text is encrypted at a time (a multiple of the
// AES block size).
const scriptFileChunkBytes = 64 << 10

// cbcEncryptingReader reads plain, a chunk at a time, and returns it CBC-encrypted with
// PKCS#7 padding after whatever pending already holds.
type cbcEncryptingReader struct {
	plain   io.Reader
	mode    cipher.BlockMode
	buf     []byte // one chunk plus room for the padding block
	pending []byte // encrypted bytes not yet returned
	done    bool   // the padded last block is in pending
}

func (e *cbcEncryptingReader) Read(p []byte) (int, error) {
	for len(e.pending) == 0 {
		if e.done {
			return 0, io.EOF
		}
		n, err := io.ReadFull(e.plain, e.buf[:scriptFileChunkBytes])
		switch {
		case err == nil:
			// A full chunk: more may follow, so no padding yet.
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			pad := aes.BlockSize - n%aes.BlockSize
			for i := range pad {
				e.buf[n+i] = byte(pad)
			}
			n += pad
			e.done = true
		default:
			return 0, err
		}
		e.mode.CryptBlocks(e.buf[:n], e.buf[:n])
		e.pending = e.buf[:n]
	}
	n := copy(p, e.pending)
	e.pending = e.pending[n:]
	return n, nil
}

func logs(st scripts.Status) []contracts.ProcessOutput {
	out := make([]contracts.ProcessOutput, len(st.Logs))
	for i, l := range st.Logs {
		out[i] = contracts.ProcessOutput{Source: contracts.ProcessOutputSource(l.Source), Occurred: l.Occurred, Text: l.Text}
	}
	return out
}

func statusV2(st scripts.Status) contracts.ScriptStatusResponseV2 {
	return contracts.ScriptStatusResponseV2{
		Ticket: contracts.ScriptTicket{TaskID: st.Ticket}, Logs: logs(st), NextLogSequence: st.NextLogSequence,
		State: contracts.ProcessState(st.State), ExitCode: int32(st.ExitCode),
	}
}

func statusV1(st scripts.Status) contracts.ScriptStatusResponse {
	return contracts.ScriptStatusResponse{
		Ticket: contracts.ScriptTicket{TaskID: st.Ticket}, Logs: logs(st), NextLogSequence: st.NextLogSequence,
		State: contracts.ProcessState(st.State), ExitCode: int32(st.ExitCode),
	}
}
