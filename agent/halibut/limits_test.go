package halibut

import (
	"strings"
	"testing"
	"time"
)

// The defaults are Tentacle's (halibut-protocol.md §3.4, §1.1, §3.3, §3.5), but for
// keep-alive and TCPUserTimeout, which notice a dropped link within 30 s (issue 20).
func TestDefaultLimitsMatchSpec(t *testing.T) {
	l := DefaultLimits()
	durations := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"ConnectTimeout", l.ConnectTimeout, 60 * time.Second},
		{"SendTimeout", l.SendTimeout, time.Minute},
		{"ReceiveTimeout", l.ReceiveTimeout, time.Minute},
		{"ReceiveResponseTimeout", l.ReceiveResponseTimeout, 5 * time.Minute},
		{"PollingReceiveRequestTimeout", l.PollingReceiveRequestTimeout, 60 * time.Second},
		{"ListeningNextRequestIdleTimeout", l.ListeningNextRequestIdleTimeout, 10 * time.Minute},
		{"HeartbeatSendTimeout", l.HeartbeatSendTimeout, 60 * time.Second},
		{"HeartbeatReceiveTimeout", l.HeartbeatReceiveTimeout, 60 * time.Second},
		{"PooledConnectionIdleTimeout", l.PooledConnectionIdleTimeout, 9 * time.Minute},
		{"PollingQueueWaitTimeout", l.PollingQueueWaitTimeout, 30 * time.Second},
		{"PollingRequestQueueTimeout", l.PollingRequestQueueTimeout, 2 * time.Minute},
		{"RetryListeningSleepInterval", l.RetryListeningSleepInterval, time.Second},
		{"ConnectionErrorRetryTimeout", l.ConnectionErrorRetryTimeout, 5 * time.Minute},
		{"PollingReconnectAfterDisconnectDelay", l.PollingReconnectAfterDisconnectDelay, time.Second},
		{"PollingReconnectMinDelay", l.PollingReconnectMinDelay, 5 * time.Second},
		{"PollingReconnectMaxDelay", l.PollingReconnectMaxDelay, 2 * time.Minute},
		{"TCPKeepAlive.Idle", l.TCPKeepAlive.Idle, 10 * time.Second},
		{"TCPUserTimeout", l.TCPUserTimeout, 25 * time.Second},
		{"TCPKeepAlive.Interval", l.TCPKeepAlive.Interval, 5 * time.Second},
	}
	for _, d := range durations {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.name, d.got, d.want)
		}
	}
	counts := []struct {
		name      string
		got, want int
	}{
		{"RetryCountLimit", l.RetryCountLimit, 5},
		{"MaxPooledConnectionsPerEndpoint", l.MaxPooledConnectionsPerEndpoint, 5},
		{"TCPKeepAlive.Count", l.TCPKeepAlive.Count, 3},
		{"MaxPreambleBytes", l.MaxPreambleBytes, 20000},
	}
	for _, c := range counts {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !l.TCPKeepAlive.Enable || !l.TCPNoDelay || !l.UseHeartbeatTimeouts {
		t.Errorf("keep-alive on, no-delay on (unlike upstream), heartbeat timeouts used: got %v %v %v", l.TCPKeepAlive.Enable, l.TCPNoDelay, l.UseHeartbeatTimeouts)
	}
	if err := l.Validate(); err != nil {
		t.Errorf("DefaultLimits().Validate() = %v", err)
	}
}

func TestLimitsValidateNamesTheBadField(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Limits)
		want   string
	}{
		{"zero timeout", func(l *Limits) { l.ReceiveTimeout = 0 }, "ReceiveTimeout"},
		{"tiny message", func(l *Limits) { l.MaxMessageBytes = 4 }, "MaxMessageBytes"},
		{"negative stream", func(l *Limits) { l.MaxDataStreamLength = -1 }, "MaxDataStreamLength"},
		{"inverted back-off", func(l *Limits) { l.PollingReconnectMaxDelay = time.Second }, "PollingReconnectMaxDelay"},
		{"no depth", func(l *Limits) { l.MaxNestingDepth = 0 }, "MaxNestingDepth"},
		{"no identification deadline", func(l *Limits) { l.IdentificationTimeout = 0 }, "IdentificationTimeout"},
		{"no cap on unidentified peers", func(l *Limits) { l.MaxUnidentifiedConnectionsPerAddress = 0 }, "MaxUnidentifiedConnectionsPerAddress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := DefaultLimits()
			tt.mutate(&l)
			err := l.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
