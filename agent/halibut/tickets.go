package halibut

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
)

// TicketFiles keeps TLS session tickets in files, so that the next process
// that dials the same peer resumes the TLS session rather than doing a full
// handshake: resuming skips both certificate signatures, ~1.5 ms of a
// `tentacle remote` command, most of it the Tentacle's RSA signature.
//
// Tickets are kept per peer address, expected thumbprints and our own
// certificate, so a session is only resumed with the peer it was verified
// against and with the identity it was made with. A resumed connection still
// passes the thumbprint check (VerifyConnection sees the certificates of the
// original handshake), and the peer checks its own trust list again: a
// Tentacle that no longer trusts us refuses the resumed session too.
//
// The files hold session secrets: Dir must be private to the user (it is
// created 0700, files 0600).
type TicketFiles struct {
	Dir string
}

// ticketMagic starts every ticket file; a file without it is ignored.
const ticketMagic = "TTK1"

// cache is the tls.ClientSessionCache for one peer. Go's own cache key (the
// server name) is not specific enough, so it is ignored.
func (t *TicketFiles) cache(addr string, expected []string, own *tls.Certificate) tls.ClientSessionCache {
	if t == nil || t.Dir == "" {
		return nil
	}
	h := sha256.New()
	h.Write([]byte(addr + "\x00" + strings.ToUpper(strings.Join(expected, ","))))
	if own != nil && len(own.Certificate) > 0 {
		h.Write(own.Certificate[0])
	}
	return &ticketFile{path: filepath.Join(t.Dir, hex.EncodeToString(h.Sum(nil)[:16])+".ticket")}
}

type ticketFile struct{ path string }

func (f *ticketFile) Get(string) (*tls.ClientSessionState, bool) {
	data, err := os.ReadFile(f.path)
	if err != nil || len(data) < len(ticketMagic)+4 || string(data[:len(ticketMagic)]) != ticketMagic {
		return nil, false
	}
	data = data[len(ticketMagic):]
	n := binary.BigEndian.Uint32(data)
	data = data[4:]
	if uint64(n) > uint64(len(data)) {
		return nil, false
	}
	state, err := tls.ParseSessionState(data[n:])
	if err != nil {
		return nil, false
	}
	cs, err := tls.NewResumptionState(data[:n], state)
	if err != nil {
		return nil, false
	}
	return cs, true
}

// Put stores the newest ticket (tls calls it with nil to forget one). It is
// best effort: a ticket that cannot be kept only costs the next process a
// full handshake.
func (f *ticketFile) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		os.Remove(f.path)
		return
	}
	ticket, state, err := cs.ResumptionState()
	if err != nil || state == nil {
		return
	}
	enc, err := state.Bytes()
	if err != nil {
		return
	}
	data := make([]byte, 0, len(ticketMagic)+4+len(ticket)+len(enc))
	data = append(data, ticketMagic...)
	data = binary.BigEndian.AppendUint32(data, uint32(len(ticket)))
	data = append(append(data, ticket...), enc...)
	_ = writePrivateFile(f.path, data)
}

// writePrivateFile replaces path atomically (temp file, rename), 0600 in a
// 0700 directory; concurrent processes each leave a whole ticket.
func writePrivateFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ticket-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
