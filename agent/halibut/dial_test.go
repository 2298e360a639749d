package halibut

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// connectProxy is a minimal HTTP CONNECT proxy on loopback that requires
// basic auth user:secret and records the tunnels it opened.
func connectProxy(t *testing.T) (*url.URL, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var tunnels atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					return
				}
				want := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:secret"))
				if req.Header.Get("Proxy-Authorization") != want {
					io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
					return
				}
				up, err := net.Dial("tcp", req.Host)
				if err != nil {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				tunnels.Add(1)
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, br)
				io.Copy(c, up)
			}()
		}
	}()
	return &url.URL{Scheme: "http", Host: ln.Addr().String(), User: url.UserPassword("user", "secret")}, &tunnels
}

func TestCallsThroughAnHTTPConnectProxy(t *testing.T) {
	_, cli, _ := certs(t)
	_, ep := startListener(t, echoService())
	proxyURL, tunnels := connectProxy(t)
	c := newClient(t, cli)
	c.Proxy = FixedProxy(proxyURL)
	got, err := c.Call(t.Context(), ep, "IEchoService", "Say", []any{"via proxy"}, nil)
	if err != nil || got != "you said: via proxy" {
		t.Fatalf("%v %v", got, err)
	}
	if tunnels.Load() != 1 {
		t.Errorf("%d tunnels opened, want 1", tunnels.Load())
	}

	bad := *proxyURL
	bad.User = url.UserPassword("user", "wrong")
	c2 := newClient(t, cli)
	c2.Proxy = FixedProxy(&bad)
	_, err = c2.Call(t.Context(), ep, "IEchoService", "Say", []any{"x"}, nil)
	if err == nil || !strings.Contains(err.Error(), "requires authentication") {
		t.Errorf("wrong proxy password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the proxy password leaked into an error: %v", err)
	}
}
