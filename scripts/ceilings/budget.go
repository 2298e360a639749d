package main

// The CPU budget of moving a package (docs/benchmarks.md, "Moving packages"):
// what each step a transfer cannot avoid costs in CPU seconds per GiB on one
// core of this machine, each measured alone from getrusage (user + system
// time of this process, so the kernel's share of a system call counts; the
// kernel's writeback threads, which flush the page cache to disk later, do
// not). Usage: ceilings BYTES budget [DIR] (DIR: where the file steps write,
// default the temp directory).

import (
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const chunk = 1 << 20 // the copy size of the agent and the CLI

// cpuSeconds is this process's user + system time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// perGiB runs step, which moves size bytes, and returns the CPU seconds it
// took per GiB and its rate in MB/s.
func perGiB(size int64, step func()) (float64, float64) {
	c0, t0 := cpuSeconds(), time.Now()
	step()
	c1, wall := cpuSeconds(), time.Since(t0)
	gib := float64(size) / (1 << 30)
	return (c1 - c0) / gib, float64(size) / wall.Seconds() / 1e6
}

func budget(size int64, srv, cli *tls.Config, dir string) {
	size = size / chunk * chunk
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	report := func(name string, cpu, mbps float64) {
		fmt.Printf("budget %-14s %.3f %.0f\n", name, cpu, mbps)
	}

	// The TLS record path, each direction alone: a client's Writes sealed
	// into memory, then a server's Reads opening those same records.
	wire := &captureConn{}
	wire.buf.Grow(int(size + size/64)) // records add 22 bytes per 16 KiB; no growing while timed
	sealer, opener := tlsPair(srv, cli, wire)
	cpu, mbps := perGiB(size, func() {
		for sent := int64(0); sent < size; sent += chunk {
			_, err := sealer.Write(buf)
			check(err)
		}
	})
	report("tls_seal", cpu, mbps)
	wire.replay()
	cpu, mbps = perGiB(size, func() {
		n, err := io.CopyBuffer(io.Discard, io.LimitReader(opener, size), buf)
		check(err)
		if n != size {
			check(fmt.Errorf("opened %d of %d bytes", n, size))
		}
	})
	report("tls_open", cpu, mbps)
	wire.buf = bytes.Buffer{}

	cpu, mbps = perGiB(size, func() {
		h := sha1.New()
		for done := int64(0); done < size; done += chunk {
			h.Write(buf)
		}
	})
	report("sha1", cpu, mbps)

	cpu, mbps = perGiB(size, func() {
		dst := make([]byte, chunk)
		for done := int64(0); done < size; done += chunk {
			copy(dst, buf)
		}
	})
	report("memcpy", cpu, mbps)

	// Writing into the page cache, twice: into pages the kernel takes from
	// its free lists (on this VM a page not touched for a while costs a fault
	// on the host: the first figure), then, the file removed, into the pages
	// just freed (the second).
	name := filepath.Join(dir, fmt.Sprintf("ceilings-budget-%d", os.Getpid()))
	defer os.Remove(name)
	var f *os.File
	for _, step := range []string{"write_cache", "write_again"} {
		if f != nil {
			f.Close()
			check(os.Remove(name))
		}
		var err error
		f, err = os.Create(name)
		check(err)
		cpu, mbps = perGiB(size, func() {
			for done := int64(0); done < size; done += chunk {
				_, err := f.Write(buf)
				check(err)
			}
		})
		report(step, cpu, mbps)
	}
	cpu, mbps = perGiB(size, func() {
		_, err := f.Seek(0, io.SeekStart)
		check(err)
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		check(err)
		if n != size {
			check(fmt.Errorf("read %d of %d bytes", n, size))
		}
	})
	report("read_cache", cpu, mbps)
	f.Close()

	// Loopback TCP, both ends in this process: the kernel's send and receive
	// (and the copies into and out of the socket buffers) together, by the
	// size of each write: crypto/tls writes one 16 KiB record per write(2).
	for _, w := range []int{16 << 10, 64 << 10, 1 << 20} {
		cpu, mbps = perGiB(size, func() { bulk(size, w, nil, nil) })
		report(fmt.Sprintf("tcp_%dk", w>>10), cpu, mbps)
	}
	// The whole TLS pipe over loopback (64 KiB writes), for cross-checking
	// the sum of the rows above.
	cpu, mbps = perGiB(size, func() { bulk(size, 64<<10, srv, cli) })
	report("tls_loopback", cpu, mbps)
}

// tlsPair hands back a client whose writes land in wire and a server that
// reads them back (after wire.replay), both past their handshake.
func tlsPair(srv, cli *tls.Config, wire *captureConn) (*tls.Conn, *tls.Conn) {
	srv = srv.Clone()
	srv.SessionTicketsDisabled = true // nothing after the handshake but the records measured
	a, b := net.Pipe()
	client := tls.Client(&switchConn{Conn: a, wire: wire}, cli)
	server := tls.Server(&switchConn{Conn: b, wire: wire, reader: true}, srv)
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	check(client.Handshake())
	check(<-done)
	wire.live = true
	return client, server
}

// captureConn holds the ciphertext between the sealing and the opening step.
type captureConn struct {
	live bool
	buf  bytes.Buffer
	rd   *bytes.Reader
}

func (c *captureConn) replay() { c.rd = bytes.NewReader(c.buf.Bytes()) }

// switchConn is the pipe during the handshake, then memory: the writer's
// side appends to wire, the reader's side reads what it holds.
type switchConn struct {
	net.Conn
	wire   *captureConn
	reader bool
}

func (s *switchConn) Write(p []byte) (int, error) {
	if s.wire.live && !s.reader {
		return s.wire.buf.Write(p)
	}
	return s.Conn.Write(p)
}

func (s *switchConn) Read(p []byte) (int, error) {
	if s.wire.live && s.reader && s.wire.rd != nil {
		return s.wire.rd.Read(p)
	}
	return s.Conn.Read(p)
}
