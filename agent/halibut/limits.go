package halibut

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Limits is the one place for every deadline and size bound of the Halibut protocol
// (reference/halibut-protocol.md §3.4). Each field names what it bounds; the comment gives
// the upstream setting it mirrors (HalibutTimeoutsAndLimits) and, where it differs, the
// plain Halibut library default, so a Go server role can be tuned to match an Octopus Server.
//
// The message layer itself only reads the size limits; the deadlines are applied by the
// transport (net.Conn deadlines) around the calls into this package.
type Limits struct {
	// --- TCP and TLS ---

	// ConnectTimeout bounds one TCP connect (TcpClientConnectTimeout, 60 s).
	ConnectTimeout time.Duration
	// SendTimeout bounds each socket write not covered below, including the TLS handshake and
	// identity lines (TcpClientTimeout.SendTimeout; Tentacle 1 min, Halibut library 10 min).
	SendTimeout time.Duration
	// ReceiveTimeout bounds each socket read not covered below, and how long a listening
	// service waits for NEXT or END after a response (TcpClientTimeout.ReceiveTimeout;
	// Tentacle 1 min, Halibut library 10 min).
	ReceiveTimeout time.Duration
	// TCPKeepAlive is the TCP keep-alive probing applied to every connection
	// (TcpKeepAliveEnabled/Time/Interval/RetryCount: on, 15 s idle, 5 s apart, 10 probes, so
	// upstream notices a silently dropped link after 65 s, and a polling Tentacle after its 60 s
	// PollingReceiveRequestTimeout). Ours: 10 s idle, 5 s apart, 3 probes: an idle connection
	// to a peer that vanished without a FIN or RST is closed after 25 s on both sides.
	TCPKeepAlive net.KeepAliveConfig
	// TCPUserTimeout bounds how long sent data may stay unacknowledged before the connection
	// is closed (Linux TCP_USER_TIMEOUT; 0 leaves the system's retransmission limit, ~15 min).
	// Keep-alive probes only run on a connection with nothing in flight: a NEXT, a null
	// request or a response sent into a dropped link would otherwise be retransmitted for
	// minutes. Upstream has no such setting; 25 s, as keep-alive.
	TCPUserTimeout time.Duration
	// TCPNoDelay disables Nagle's algorithm when true. Upstream leaves it off (TcpNoDelay), and
	// Nagle plus delayed ACKs then stalls the small control lines (NEXT, PROCEED) by tens of
	// milliseconds per round trip, a known upstream bug; we turn it on.
	TCPNoDelay bool
	// TCPQuickAck acknowledges received data at once instead of delaying the ACK (Linux
	// TCP_QUICKACK re-armed after every read; a per-socket ACK frequency of 1 on Windows; see
	// tcpack_*.go). Our own Nagle setting only shapes what we send: a peer that leaves Nagle on
	// (an Octopus Server, whose Halibut default is TcpNoDelay = false) holds its next small write
	// until we ACK the last one, and a delayed ACK makes that 40 ms per polling request.
	// Upstream has no such setting; we turn it on.
	TCPQuickAck bool

	// --- accepting connections (our hardening; upstream has no such bounds) ---

	// IdentificationTimeout bounds the whole time from accepting a connection to knowing who
	// the peer is: TLS handshake, preamble and identity line together. It is one fixed
	// deadline, not an idle bound per read, so a peer trickling bytes cannot keep a connection
	// that has not identified itself open.
	IdentificationTimeout time.Duration
	// MaxUnidentifiedConnections bounds the connections accepted but not yet identified. When
	// it is reached, a new connection closes the oldest unidentified connection of the source
	// address holding the most, so holding connections open never locks a newcomer out.
	MaxUnidentifiedConnections int
	// MaxUnidentifiedConnectionsPerAddress bounds the unidentified connections from one
	// source address (an IPv6 address counts by its /64); its oldest is closed for a new one.
	MaxUnidentifiedConnectionsPerAddress int
	// UnidentifiedEvictionAge: an unidentified connection younger than this is not closed to
	// make room; the newcomer is closed instead, and its peer retries with its back-off. A
	// burst of real handshakes (hundreds of polling Tentacles reconnecting after their server
	// restarted) then finishes, where closing the oldest closed each handshake before it could
	// finish on a busy machine. Zero (the default, and the agent's listening port) evicts at
	// any age, so that a flood of fresh connections cannot refuse the Octopus Server even for
	// a moment; a polling endpoint (`remote serve`), whose clients are many Tentacles that
	// all retry, sets it.
	UnidentifiedEvictionAge time.Duration
	// RefusalLogInterval is how often refused connections from one address are summarised
	// in the log after the first refusal, which is logged in full at once.
	RefusalLogInterval time.Duration
	// MaxRefusalLogAddresses bounds the addresses whose refusals are tallied one by one;
	// refusals from further addresses are counted together.
	MaxRefusalLogAddresses int

	// --- conversation ---

	// ReceiveResponseTimeout bounds an RPC client's wait for the first byte of a response,
	// i.e. the longest one RPC may execute (TcpClientReceiveResponseTimeout; Tentacle 5 min,
	// Halibut library 10 min).
	ReceiveResponseTimeout time.Duration
	// PollingReceiveRequestTimeout bounds a polling service's wait for the next request or
	// null request (TcpClientReceiveRequestTimeoutForPolling; Tentacle 60 s, library 10 min).
	PollingReceiveRequestTimeout time.Duration
	// ListeningNextRequestIdleTimeout bounds a listening service's wait for the first byte of
	// a request after identification or PROCEED (TcpListeningNextRequestIdleTimeout, 10 min).
	ListeningNextRequestIdleTimeout time.Duration
	// HeartbeatSendTimeout bounds writing NEXT, PROCEED and END (TcpClientHeartbeatTimeout, 60 s).
	HeartbeatSendTimeout time.Duration
	// HeartbeatReceiveTimeout bounds reading PROCEED, and a polling server reading NEXT after
	// an exchange (TcpClientHeartbeatTimeout, 60 s).
	HeartbeatReceiveTimeout time.Duration
	// UseHeartbeatTimeouts makes the polling server use HeartbeatReceiveTimeout instead of
	// ReceiveTimeout while waiting for NEXT (TcpClientHeartbeatTimeoutShouldActuallyBeUsed;
	// true for Tentacle, false in the Halibut library).
	UseHeartbeatTimeouts bool

	// --- client pool and retries (listening mode) ---

	// PooledConnectionIdleTimeout bounds how long an idle pooled client connection may be
	// reused (TcpClientPooledConnectionTimeout, 9 min).
	PooledConnectionIdleTimeout time.Duration
	// MaxPooledConnectionsPerEndpoint bounds the idle connections kept per ServiceEndPoint;
	// extra ones are closed (ConnectionPoolAsync, 5).
	MaxPooledConnectionsPerEndpoint int
	// RetryCountLimit bounds the connection attempts for one RPC while nothing can have
	// reached the service (RetryCountLimit, 5).
	RetryCountLimit int
	// RetryListeningSleepInterval is the pause between those attempts (1 s).
	RetryListeningSleepInterval time.Duration
	// ConnectionErrorRetryTimeout bounds the whole window of those attempts (5 min).
	ConnectionErrorRetryTimeout time.Duration

	// --- polling ---

	// PollingQueueWaitTimeout bounds the server's dequeue wait before it sends a null
	// request, i.e. the keep-alive cadence (PollingQueueWaitTimeout, 30 s).
	PollingQueueWaitTimeout time.Duration
	// PollingRequestQueueTimeout bounds how long a queued request may wait to be collected by
	// a poller before it fails (PollingRequestQueueTimeout, 2 min).
	PollingRequestQueueTimeout time.Duration
	// The polling reconnect policy (reconnectPolicy in poller.go) is these three numbers.
	//
	// PollingReconnectAfterDisconnectDelay bounds the pause before connecting again after a
	// connection that had identified itself ends: uniform in [half, all] of it. A server drops
	// a polling connection when it cancels the request in flight (a cancelled deployment step)
	// and then queues CancelScript, so the agent must be back at once. Upstream resets its
	// back-off once identified and comes back after its 5 s minimum; we take about a second.
	PollingReconnectAfterDisconnectDelay time.Duration
	// PollingReconnectMinDelay is the ceiling of the first pause while connecting fails (refused,
	// TLS, no identification); each further failure doubles the ceiling (full jitter, never
	// below a tenth of this), so a fleet that lost its server does not retry in lock-step
	// (RetryPolicy.Create's 5 s minimum).
	PollingReconnectMinDelay time.Duration
	// PollingReconnectMaxDelay caps the pause while connecting keeps failing (2 min).
	PollingReconnectMaxDelay time.Duration

	// --- framing sizes (our hardening; upstream has no such bounds unless noted) ---

	// MaxPreambleBytes bounds the "MX" preamble read by a listener (20 000, as upstream).
	MaxPreambleBytes int
	// MaxControlLineBytes bounds one identity or control line, CR LF excluded.
	MaxControlLineBytes int
	// MaxMessageBytes bounds one decompressed BSON envelope, read or written; this is what
	// refuses a deflate bomb.
	MaxMessageBytes int
	// MaxCompressedMessageBytes bounds the compressed bytes consumed for one envelope, so a
	// peer cannot keep the reader busy with blocks that decompress to nothing.
	MaxCompressedMessageBytes int64
	// MaxNestingDepth bounds nested documents and arrays in one envelope, the root counting
	// as 1 (Newtonsoft's own MaxDepth default is 64).
	MaxNestingDepth int
	// MaxMessageElements bounds the total number of BSON elements in one envelope. A decoded
	// element costs up to ~96 bytes of memory while its BSON can be 2 bytes, so this, not
	// MaxMessageBytes, is what bounds the memory a small compressed message can claim.
	MaxMessageElements int
	// MaxDecodingBytes bounds the memory that all envelopes being decoded at once take
	// together, across every connection of the process with the same value: inflated bytes,
	// copied strings and decoded elements. A decode that does not fit waits up to
	// ReceiveTimeout for others to finish, then fails with ErrDecodingBusy.
	MaxDecodingBytes int64
	// MaxDataStreamLength bounds the declared length of one data stream.
	MaxDataStreamLength int64
	// MaxDataStreamsPerMessage bounds the number of data streams announced by one envelope.
	MaxDataStreamsPerMessage int
	// DataStreamBufferSize is the copy buffer for spooling a received data stream payload
	// (what a .NET receiver uses 64 KiB for).
	DataStreamBufferSize int
	// WriteBufferSize coalesces the small writes of one message (deflate output, stream
	// headers) so they leave in few TLS records.
	WriteBufferSize int
}

// DefaultLimits returns the values a real Tentacle runs with: Halibut's RecommendedValues()
// with Tentacle's environment defaults (reference/halibut-protocol.md §3.4, §1.1, §3.3), plus
// our own framing bounds.
func DefaultLimits() Limits {
	return Limits{
		ConnectTimeout: 60 * time.Second,
		SendTimeout:    1 * time.Minute,
		ReceiveTimeout: 1 * time.Minute,
		TCPKeepAlive: net.KeepAliveConfig{
			Enable:   true,
			Idle:     10 * time.Second,
			Interval: 5 * time.Second,
			Count:    3,
		},
		TCPUserTimeout: 25 * time.Second,
		TCPNoDelay:     true,
		TCPQuickAck:    true,

		IdentificationTimeout: 20 * time.Second,
		// Well under a small file limit (ulimit -n 1024, or a few hundred in a container), so
		// accepting never runs out of descriptors; an Octopus Server opens a handful at once.
		MaxUnidentifiedConnections:           128,
		MaxUnidentifiedConnectionsPerAddress: 32,
		RefusalLogInterval:                   time.Minute,
		MaxRefusalLogAddresses:               256,

		ReceiveResponseTimeout:          5 * time.Minute,
		PollingReceiveRequestTimeout:    60 * time.Second,
		ListeningNextRequestIdleTimeout: 10 * time.Minute,
		HeartbeatSendTimeout:            60 * time.Second,
		HeartbeatReceiveTimeout:         60 * time.Second,
		UseHeartbeatTimeouts:            true,

		PooledConnectionIdleTimeout:     9 * time.Minute,
		MaxPooledConnectionsPerEndpoint: 5,
		RetryCountLimit:                 5,
		RetryListeningSleepInterval:     1 * time.Second,
		ConnectionErrorRetryTimeout:     5 * time.Minute,

		PollingQueueWaitTimeout:              30 * time.Second,
		PollingRequestQueueTimeout:           2 * time.Minute,
		PollingReconnectAfterDisconnectDelay: 1 * time.Second,
		PollingReconnectMinDelay:             5 * time.Second,
		PollingReconnectMaxDelay:             2 * time.Minute,

		MaxPreambleBytes:    20000,
		MaxControlLineBytes: 8 << 10,
		// Script bodies and StartScript arguments travel inline (files travel as data
		// streams), and an upstream Tentacle's GetStatus response carries every log line
		// since the last poll, so the envelope bound stays generous; MaxDecodingBytes bounds
		// what many such messages at once can cost.
		MaxMessageBytes:           64 << 20,
		MaxCompressedMessageBytes: 72 << 20,
		MaxNestingDepth:           64,
		// The largest message we send or expect is a GetStatus response with a full page of
		// log records: agent/scripts bounds a page to 65536 records of 4 elements each, half
		// of this. A StartScript takes a few elements per file and argument.
		MaxMessageElements: 512 << 10,
		// Any number of ordinary messages at once, but one MaxMessageBytes envelope (twice
		// its size with its strings) at a time: one costing more than this is decoded alone.
		MaxDecodingBytes: 128 << 20,
		// Packages are uploaded as one data stream; this refuses absurd declarations only.
		MaxDataStreamLength:      64 << 30,
		MaxDataStreamsPerMessage: 10000,
		DataStreamBufferSize:     64 << 10,
		WriteBufferSize:          64 << 10,
	}
}

// Validate reports every limit that cannot work (zero or negative), so a bad override
// fails at start-up rather than on the first message.
func (l Limits) Validate() error {
	var errs []error
	positiveDuration := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("halibut limits: %s must be positive, got %v", name, d))
		}
	}
	positive := func(name string, n int64) {
		if n <= 0 {
			errs = append(errs, fmt.Errorf("halibut limits: %s must be positive, got %d", name, n))
		}
	}
	positiveDuration("ConnectTimeout", l.ConnectTimeout)
	positiveDuration("SendTimeout", l.SendTimeout)
	positiveDuration("ReceiveTimeout", l.ReceiveTimeout)
	positiveDuration("IdentificationTimeout", l.IdentificationTimeout)
	positiveDuration("RefusalLogInterval", l.RefusalLogInterval)
	positive("MaxUnidentifiedConnections", int64(l.MaxUnidentifiedConnections))
	positive("MaxUnidentifiedConnectionsPerAddress", int64(l.MaxUnidentifiedConnectionsPerAddress))
	positive("MaxRefusalLogAddresses", int64(l.MaxRefusalLogAddresses))
	positiveDuration("ReceiveResponseTimeout", l.ReceiveResponseTimeout)
	positiveDuration("PollingReceiveRequestTimeout", l.PollingReceiveRequestTimeout)
	positiveDuration("ListeningNextRequestIdleTimeout", l.ListeningNextRequestIdleTimeout)
	positiveDuration("HeartbeatSendTimeout", l.HeartbeatSendTimeout)
	positiveDuration("HeartbeatReceiveTimeout", l.HeartbeatReceiveTimeout)
	positiveDuration("PooledConnectionIdleTimeout", l.PooledConnectionIdleTimeout)
	positiveDuration("RetryListeningSleepInterval", l.RetryListeningSleepInterval)
	positiveDuration("ConnectionErrorRetryTimeout", l.ConnectionErrorRetryTimeout)
	positiveDuration("PollingQueueWaitTimeout", l.PollingQueueWaitTimeout)
	positiveDuration("PollingRequestQueueTimeout", l.PollingRequestQueueTimeout)
	positiveDuration("PollingReconnectAfterDisconnectDelay", l.PollingReconnectAfterDisconnectDelay)
	positiveDuration("PollingReconnectMinDelay", l.PollingReconnectMinDelay)
	positiveDuration("PollingReconnectMaxDelay", l.PollingReconnectMaxDelay)
	positive("MaxPooledConnectionsPerEndpoint", int64(l.MaxPooledConnectionsPerEndpoint))
	positive("RetryCountLimit", int64(l.RetryCountLimit))
	positive("MaxPreambleBytes", int64(l.MaxPreambleBytes))
	positive("MaxControlLineBytes", int64(l.MaxControlLineBytes))
	positive("MaxCompressedMessageBytes", l.MaxCompressedMessageBytes)
	positive("MaxNestingDepth", int64(l.MaxNestingDepth))
	positive("MaxMessageElements", int64(l.MaxMessageElements))
	positive("MaxDecodingBytes", l.MaxDecodingBytes)
	positive("MaxDataStreamsPerMessage", int64(l.MaxDataStreamsPerMessage))
	positive("DataStreamBufferSize", int64(l.DataStreamBufferSize))
	positive("WriteBufferSize", int64(l.WriteBufferSize))
	if l.MaxMessageBytes < minDocumentSize {
		errs = append(errs, fmt.Errorf("halibut limits: MaxMessageBytes must be at least %d, got %d", minDocumentSize, l.MaxMessageBytes))
	}
	if l.MaxDataStreamLength < 0 {
		errs = append(errs, fmt.Errorf("halibut limits: MaxDataStreamLength must not be negative, got %d", l.MaxDataStreamLength))
	}
	if l.TCPUserTimeout < 0 {
		errs = append(errs, fmt.Errorf("halibut limits: TCPUserTimeout must not be negative, got %v", l.TCPUserTimeout))
	}
	if l.PollingReconnectMaxDelay < l.PollingReconnectMinDelay {
		errs = append(errs, fmt.Errorf("halibut limits: PollingReconnectMaxDelay (%v) is below PollingReconnectMinDelay (%v)", l.PollingReconnectMaxDelay, l.PollingReconnectMinDelay))
	}
	return errors.Join(errs...)
}
