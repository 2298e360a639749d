package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Timings of the health check, named after what they bound.
const (
	// healthPoll is how often an agent's health is read while waiting.
	healthPoll = 200 * time.Millisecond
	// dialWait bounds one connection to the agent's listening port.
	dialWait = 2 * time.Second
	// heartbeatClockSlack covers file time stamps lagging the wall clock.
	heartbeatClockSlack = 100 * time.Millisecond
)

// Health is one reading of an agent's health.
type Health struct {
	OK     bool
	Reason string // why not, or what was seen
}

// CheckHealth reads whether in's agent (main process pid) serves: its
// service runs, its heartbeat (what `tentacle livez` reads) was touched at
// or after since, and it accepts connections on its listening port or has
// a polling connection to one of its servers.
func CheckHealth(ctx context.Context, svc Services, in Instance, since time.Time) (Health, int) {
	st, err := svc.Status(ctx, in)
	switch {
	case err != nil:
		return Health{Reason: err.Error()}, 0
	case st.Failed:
		return Health{Reason: "the agent exited and its service failed"}, st.MainPID
	case !st.Running || st.MainPID == 0:
		return Health{Reason: "its service is not running"}, st.MainPID
	}
	heartbeat := filepath.Join(in.Home, "livez.heartbeat")
	fi, err := os.Stat(heartbeat)
	if err != nil {
		return Health{Reason: "no heartbeat yet (" + heartbeat + ")"}, st.MainPID
	}
	if fi.ModTime().Before(since.Add(-heartbeatClockSlack)) {
		return Health{Reason: "the agent has not touched " + heartbeat + " since it was restarted"}, st.MainPID
	}
	var reasons []string
	if in.Listen != "" {
		c, err := net.DialTimeout("tcp", in.Listen, dialWait)
		if err == nil {
			c.Close()
			return Health{OK: true, Reason: "listening on " + in.Listen}, st.MainPID
		}
		reasons = append(reasons, fmt.Sprintf("it does not accept connections on %s (%v)", in.Listen, err))
	}
	if len(in.Polls) > 0 {
		server, err := pollingConnection(st.MainPID, in.Polls)
		switch {
		case err == nil:
			return Health{OK: true, Reason: "polling " + server}, st.MainPID
		case errors.Is(err, errors.ErrUnsupported):
			return Health{OK: true, Reason: "heartbeat"}, st.MainPID
		}
		reasons = append(reasons, err.Error())
	}
	if len(reasons) == 0 {
		// Neither listening nor polling: the heartbeat is all there is.
		return Health{OK: true, Reason: "heartbeat"}, st.MainPID
	}
	return Health{Reason: strings.Join(reasons, "; ")}, st.MainPID
}

// waitHealthy waits up to wait for in to be healthy, and for the same agent
// process to stay so across two readings (an agent that exits right after
// its first heartbeat is not healthy).
func waitHealthy(ctx context.Context, svc Services, in Instance, since time.Time, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	lastPID := 0
	for {
		h, pid := CheckHealth(ctx, svc, in, since)
		if h.OK && pid == lastPID {
			return nil
		}
		lastPID = 0
		if h.OK {
			lastPID = pid
		}
		if time.Now().After(deadline) {
			return errors.New("not healthy within " + wait.String() + ": " + h.Reason)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(healthPoll):
		}
	}
}

// hostPort is the host:port of a polling server address
// (https://host:port/ or wss://host/...).
func hostPort(address string) string {
	u, err := url.Parse(address)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// dialAddress is where this machine reaches an agent listening on ip:port:
// a wildcard is reached on loopback.
func dialAddress(ip string, port int) string {
	switch ip {
	case "", "0.0.0.0", "*", "+":
		ip = "127.0.0.1"
	case "::", "[::]":
		ip = "::1"
	}
	return net.JoinHostPort(strings.Trim(ip, "[]"), strconv.Itoa(port))
}
