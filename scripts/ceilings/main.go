// Raw ceilings for docs/benchmarks.md (built and run by scripts/bench.sh and
// scripts/bench-transfer.sh): what this machine does at best with no Tentacle
// code involved. Its own module, so that it is never part of the tentacle
// build. Usage: ceilings BYTES [bulk | budget [DIR]]; with "bulk", only the
// TCP and TLS bulk rates; with "budget", CPU seconds per GiB of each step
// of a transfer (budget.go).
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

func main() {
	size, err := strconv.ParseInt(os.Args[1], 10, 64) // bytes per bulk transfer
	check(err)
	// RSA-2048, self-signed, both ends presenting one: as Tentacle and its server do.
	cert := selfSigned()
	srv := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13}
	cli := &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	if len(os.Args) > 2 && os.Args[2] == "budget" {
		dir := os.TempDir()
		if len(os.Args) > 3 {
			dir = os.Args[3]
		}
		budget(size, srv, cli, dir)
		return
	}
	// Best of three: a ceiling, not a typical figure.
	var tcp, tl float64
	for range 3 {
		tcp = max(tcp, bulk(size, 64<<10, nil, nil))
		tl = max(tl, bulk(size, 64<<10, srv, cli))
	}
	fmt.Printf("tcp_mbps %.0f\ntls_mbps %.0f\n", tcp, tl)
	if len(os.Args) > 2 && os.Args[2] == "bulk" {
		return
	}
	p50, p99 := handshakes(200, srv, cli)
	fmt.Printf("handshake_ms %.2f %.2f\n", p50, p99)
	p50, p99 = spawns(500)
	fmt.Printf("goexec_ms %.2f %.2f\n", p50, p99)
}

func selfSigned() tls.Certificate {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	check(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	check(err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// bulk sends size bytes over one loopback connection in writes of write
// bytes (TLS when configs are given) and returns MB/s (10^6 B/s) as the
// receiver saw it.
func bulk(size int64, write int, srv, cli *tls.Config) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	got := make(chan float64)
	go func() {
		c, err := ln.Accept()
		check(err)
		if srv != nil {
			tc := tls.Server(c, srv)
			check(tc.Handshake())
			c = tc
		}
		start := time.Now()
		n, err := io.Copy(io.Discard, c)
		check(err)
		got <- float64(n) / time.Since(start).Seconds() / 1e6
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	check(err)
	if cli != nil {
		tc := tls.Client(c, cli)
		check(tc.Handshake())
		c = tc
	}
	buf := make([]byte, write)
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		_, err := c.Write(buf)
		check(err)
	}
	c.Close()
	return <-got
}

// handshakes times n full mutual TLS 1.3 handshakes (a new TCP connection
// each, no resumption), both ends on this box; p50 and p99 in ms.
func handshakes(n int, srv, cli *tls.Config) (float64, float64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, srv)
				tc.Handshake()
				io.Copy(io.Discard, tc)
				tc.Close()
			}()
		}
	}()
	var d []float64
	for range n {
		start := time.Now()
		c, err := tls.Dial("tcp", ln.Addr().String(), cli)
		check(err)
		d = append(d, ms(time.Since(start)))
		c.Close()
	}
	return pct(d, 50), pct(d, 99)
}

// spawns times n runs of /bin/sh -c true started from Go, as the agent starts
// processes; p50 and p99 in ms.
func spawns(n int) (float64, float64) {
	var d []float64
	for range n {
		start := time.Now()
		check(exec.Command("/bin/sh", "-c", "true").Run())
		d = append(d, ms(time.Since(start)))
	}
	return pct(d, 50), pct(d, 99)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// pct is the nearest-rank percentile, as scripts/bench.sh computes it.
func pct(d []float64, p int) float64 {
	slices.Sort(d)
	return d[max((len(d)*p+99)/100, 1)-1]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "ceilings:", err)
		os.Exit(1)
	}
}
