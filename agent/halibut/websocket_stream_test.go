package halibut

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rawWebSocketClient is a hand-driven WebSocket client: it writes frames
// byte by byte where a test needs it, as a slow or .NET peer would.
type rawWebSocketClient struct {
	net.Conn
	br *bufio.Reader
}

// streamPair upgrades a raw client connection at an httptest server and
// returns the server's end as a wsStream.
func streamPair(t *testing.T) (*wsStream, *rawWebSocketClient) {
	t.Helper()
	got := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		got <- ws
	}))
	t.Cleanup(srv.Close)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	s := newWSStream(<-got)
	t.Cleanup(func() { s.Close() })
	return s, &rawWebSocketClient{Conn: c, br: br}
}

// frame is one masked client frame (RFC 6455 §5.2).
func frame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	default:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	}
	key := [4]byte{1, 2, 3, 4}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

// readString reads exactly n bytes from s.
func readString(t *testing.T, s *wsStream, n int) string {
	t.Helper()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(s, b); err != nil {
		t.Fatalf("read: %v (got %q)", err, b)
	}
	return string(b)
}

// Upstream's sender writes one endless binary message as non-final
// fragments; bytes arrive as each fragment does, and boundaries between
// messages are not seen either.
func TestWebSocketStreamIgnoresMessageBoundaries(t *testing.T) {
	s, c := streamPair(t)
	c.Write(frame(false, 0x2, []byte("abc")))
	if got := readString(t, s, 3); got != "abc" {
		t.Fatalf("first fragment: %q", got)
	}
	c.Write(frame(false, 0x0, []byte("def")))
	c.Write(frame(true, 0x0, []byte("ghi")))
	c.Write(frame(true, 0x2, []byte("jkl")))
	if got := readString(t, s, 9); got != "defghijkl" {
		t.Fatalf("continuations and the next message: %q", got)
	}
}

// A read interrupted by its deadline, even in the middle of a frame,
// loses nothing: the next read gets the rest (the hang-up watch relies on
// this).
func TestWebSocketStreamDeadlineInTheMiddleOfAFrame(t *testing.T) {
	s, c := streamPair(t)
	f := frame(true, 0x2, []byte(strings.Repeat("x", 200)))
	c.Write(f[:3]) // part of the header
	readErr := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.SetReadDeadline(time.Unix(1, 0)) // as conn.watchForHangUp's stop does
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the interrupted read: %v", err)
	}
	c.Write(f[3:])
	if got := readString(t, s, 200); got != strings.Repeat("x", 200) {
		t.Fatalf("after the interruption: %q", got)
	}
	// A deadline in the future does not fire once moved away.
	s.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	s.SetReadDeadline(time.Time{})
	go func() { time.Sleep(100 * time.Millisecond); c.Write(frame(true, 0x2, []byte("late"))) }()
	b := make([]byte, 4)
	if _, err := io.ReadFull(s, b); err != nil || string(b) != "late" {
		t.Fatalf("a cleared deadline fired: %v %q", err, b)
	}
}

// Pings are answered while reading; a close frame is the end of the
// stream, answered with a close.
func TestWebSocketStreamPingAndClose(t *testing.T) {
	s, c := streamPair(t)
	c.Write(frame(true, 0x9, []byte("are you there")))
	c.Write(frame(true, 0x2, []byte("data")))
	if got := readString(t, s, 4); got != "data" {
		t.Fatalf("data after a ping: %q", got)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(c.br, hdr); err != nil || hdr[0] != 0x8A || int(hdr[1]) != len("are you there") {
		t.Fatalf("pong header: %x %v", hdr, err)
	}
	pong := make([]byte, hdr[1])
	io.ReadFull(c.br, pong)
	if string(pong) != "are you there" {
		t.Fatalf("pong payload %q", pong)
	}
	c.Write(frame(true, 0x8, []byte{0x03, 0xE8}))
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := s.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("after a close frame: %d, %v; want EOF", n, err)
	}
	if _, err := io.ReadFull(c.br, hdr); err != nil || hdr[0] != 0x88 {
		t.Fatalf("the close was not answered: %x %v", hdr, err)
	}
}

// What RFC 6455 forbids is refused: an unmasked client frame, reserved
// bits without an extension, an oversize control frame.
func TestWebSocketStreamRefusesMalformedFrames(t *testing.T) {
	for name, bad := range map[string][]byte{
		"unmasked":      {0x82, 0x01, 'x'},
		"reserved bits": append([]byte{0xC2}, frame(true, 0x2, []byte("x"))[1:]...),
		"control > 125": frame(true, 0x9, make([]byte, 126)),
		"bad opcode":    frame(true, 0x3, []byte("x")),
	} {
		t.Run(name, func(t *testing.T) {
			s, c := streamPair(t)
			c.Write(bad)
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := s.Read(make([]byte, 10)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read %d bytes, err %v; want a protocol error", n, err)
			}
		})
	}
}
