package halibut

import (
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tentacle-go/tentacle/internal/proxytest"
)

// connectProxy is an HTTP CONNECT proxy on loopback that requires basic
// auth user:secret and counts the tunnels it opened.
func connectProxy(t *testing.T) (*url.URL, *atomic.Int32) {
	p := proxytest.Start(t, proxytest.Options{Username: "user", Password: "secret"})
	return p.URL, &p.Tunnels
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
