package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// KeyMetricsListenAddress is our own configuration key (upstream ignores
// it): where the optional health and metrics endpoint listens.
const KeyMetricsListenAddress = "Tentacle.Metrics.ListenAddress"

// LogCounter is a slog handler wrapper that counts records by level, so the
// metrics can report errors without parsing the log.
type LogCounter struct {
	slog.Handler
	counts *[4]atomic.Int64 // debug, info, warn, error
}

// NewLogCounter wraps h.
func NewLogCounter(h slog.Handler) *LogCounter {
	return &LogCounter{Handler: h, counts: new([4]atomic.Int64)}
}

func (l *LogCounter) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Level >= slog.LevelError:
		l.counts[3].Add(1)
	case r.Level >= slog.LevelWarn:
		l.counts[2].Add(1)
	case r.Level >= slog.LevelInfo:
		l.counts[1].Add(1)
	default:
		l.counts[0].Add(1)
	}
	return l.Handler.Handle(ctx, r)
}

func (l *LogCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &LogCounter{Handler: l.Handler.WithAttrs(attrs), counts: l.counts}
}

func (l *LogCounter) WithGroup(name string) slog.Handler {
	return &LogCounter{Handler: l.Handler.WithGroup(name), counts: l.counts}
}

// WriteMetrics writes the agent's state in the Prometheus text format.
func (a *Agent) WriteMetrics(w io.Writer, logs *LogCounter) {
	metric := func(name, help, kind string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	metric("tentacle_up", "1 while the agent runs.", "gauge")
	fmt.Fprintln(w, "tentacle_up 1")
	// The standard Go collector's name, so a leak of goroutines shows on dashboards
	// that already chart it (and the load tests read it).
	metric("go_goroutines", "Number of goroutines that currently exist.", "gauge")
	fmt.Fprintf(w, "go_goroutines %d\n", runtime.NumGoroutine())
	if a.listener != nil {
		open, total := a.listener.Connections()
		metric("tentacle_listening_connections", "Identified connections from servers open now.", "gauge")
		fmt.Fprintf(w, "tentacle_listening_connections %d\n", open)
		metric("tentacle_listening_connections_total", "Identified connections from servers since start.", "counter")
		fmt.Fprintf(w, "tentacle_listening_connections_total %d\n", total)
	}
	if len(a.pollers) > 0 {
		metric("tentacle_polling_connections", "Polling connections established now, per server.", "gauge")
		for _, p := range a.pollers {
			fmt.Fprintf(w, "tentacle_polling_connections{server=%q} %d\n", p.ServerAddress, p.Connected())
		}
	}
	stats := a.service.Stats()
	sort.Slice(stats, func(i, j int) bool { return stats[i].Service+stats[i].Method < stats[j].Service+stats[j].Method })
	metric("tentacle_rpc_total", "Requests served, per service and method.", "counter")
	for _, s := range stats {
		fmt.Fprintf(w, "tentacle_rpc_total{service=%q,method=%q} %d\n", s.Service, s.Method, s.Calls)
	}
	metric("tentacle_rpc_errors_total", "Requests answered with an error, per service and method.", "counter")
	for _, s := range stats {
		fmt.Fprintf(w, "tentacle_rpc_errors_total{service=%q,method=%q} %d\n", s.Service, s.Method, s.Errors)
	}
	pending, running := a.manager.Counts()
	metric("tentacle_scripts", "Scripts known to this agent, by state.", "gauge")
	fmt.Fprintf(w, "tentacle_scripts{state=\"pending\"} %d\ntentacle_scripts{state=\"running\"} %d\n", pending, running)
	if logs != nil {
		metric("tentacle_log_records_total", "Lines the agent logged, by level.", "counter")
		for i, level := range []string{"debug", "info", "warn", "error"} {
			fmt.Fprintf(w, "tentacle_log_records_total{level=%q} %d\n", level, logs.counts[i].Load())
		}
	}
}

// healthy reports whether the agent is serving: listening, or at least one
// polling connection up.
func (a *Agent) healthy() (bool, string) {
	var reasons []string
	if a.listener != nil {
		if a.listener.Stopped() {
			return false, "the listener is closed"
		}
		return true, "listening"
	}
	for _, p := range a.pollers {
		if p.Connected() > 0 {
			return true, "polling " + p.ServerAddress
		}
		reasons = append(reasons, "no polling connection to "+p.ServerAddress)
	}
	return false, strings.Join(reasons, "; ")
}

// ServeMetrics serves /metrics and /healthz on addr (loopback only: it is
// not authenticated) until ctx ends.
func (a *Agent) ServeMetrics(ctx context.Context, addr string, logs *LogCounter) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics address %q is not host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("the metrics endpoint is unauthenticated, so it only listens on loopback (127.0.0.1 or ::1), not %q", host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s for metrics: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		a.WriteMetrics(w, logs)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := a.healthy()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	a.log.Info("metrics and health endpoint", "address", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
