// Package proxytest is an HTTP proxy on loopback for tests of what goes
// through one: CONNECT tunnels (and, with Forward, plain HTTP requests),
// optionally behind basic authentication, or refusing every tunnel.
package proxytest

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
)

// Options shape the proxy.
type Options struct {
	// Username and Password, when set, are required (407 otherwise).
	Username, Password string
	// Forward serves plain HTTP requests too (one per connection), as a
	// forward proxy; otherwise only CONNECT is served.
	Forward bool
	// Refuse answers every CONNECT with 403 Forbidden.
	Refuse bool
}

// Proxy is a running proxy.
type Proxy struct {
	// URL is the proxy's address, with the credentials when required.
	URL *url.URL
	// Tunnels counts the tunnels opened and requests forwarded.
	Tunnels atomic.Int32
}

// Start runs a proxy until the test ends.
func Start(t testing.TB, opts Options) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &Proxy{URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}}
	if opts.Username != "" {
		p.URL.User = url.UserPassword(opts.Username, opts.Password)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, opts)
		}
	}()
	return p
}

func (p *Proxy) serve(c net.Conn, opts Options) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if opts.Username != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(opts.Username+":"+opts.Password))
		if req.Header.Get("Proxy-Authorization") != want {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
			return
		}
	}
	if req.Method != http.MethodConnect {
		if !opts.Forward {
			io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
			return
		}
		req.RequestURI = ""
		req.Header.Del("Proxy-Authorization")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		p.Tunnels.Add(1)
		resp.Close = true // one request per connection: tell the client so
		resp.Write(c)
		return
	}
	if opts.Refuse {
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", req.Host)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer up.Close()
	p.Tunnels.Add(1)
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	go io.Copy(up, br)
	io.Copy(c, up)
}
