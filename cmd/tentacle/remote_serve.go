package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// RemoteServeCmd is a long-running polling endpoint (what an Octopus Server
// runs on 10943): polling Tentacles stay connected to it, and short-lived
// `remote exec --poll ID --via URL` commands reach them through its
// loopback control listener.
type RemoteServeCmd struct {
	Listen   string   `name:"listen" default:":10943" help:"Where polling Tentacles connect" placeholder:"ADDR"`
	Control  string   `name:"control" default:"127.0.0.1:10944" help:"Where remote commands connect (--via); keep it on loopback" placeholder:"ADDR"`
	Trust    []string `name:"trust" sep:"none" help:"Thumbprint of a Tentacle allowed to poll (repeatable)" placeholder:"THUMBPRINT"`
	Cert     string   `name:"cert" help:"The operator certificate (PFX); default: the one remote new-certificate made" placeholder:"PFX"`
	Password string   `name:"password" help:"Password of --cert" placeholder:"PASSWORD" sensitive:""`
	// Nagle makes the polling side behave as an Octopus Server does on the
	// wire (Halibut's TcpNoDelay = false), to measure agents against it.
	Nagle bool `name:"nagle" hidden:"" help:"Leave Nagle's algorithm on for polling connections, as Octopus Server does"`
}

func (c *RemoteServeCmd) Run(e *Env) error {
	if len(c.Trust) == 0 {
		return config.Userf("Say which Tentacles may poll with --trust THUMBPRINT (repeatable; `tentacle show-thumbprint` on each).")
	}
	trusted, err := normalizeThumbprints(c.Trust)
	if err != nil {
		return err
	}
	cert, err := (&remoteTarget{Cert: c.Cert, Password: c.Password}).operatorCertificate(e)
	if err != nil {
		return err
	}
	tlsCert := cert.TLS()
	lim := halibut.DefaultLimits()
	pollLn, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return config.Userf("Cannot listen on %s: %v. Pick another address with --listen.", c.Listen, unwrapNetErr(err))
	}
	ctlLn, err := net.Listen("tcp", c.Control)
	if err != nil {
		pollLn.Close()
		return config.Userf("Cannot listen on %s: %v. Pick another address with --control.", c.Control, unwrapNetErr(err))
	}
	pollLim := lim
	// Tentacles reconnecting all at once after a restart must not close
	// each other's handshakes (halibut.Limits.UnidentifiedEvictionAge).
	pollLim.UnidentifiedEvictionAge = 3 * time.Second
	if c.Nagle {
		pollLim.TCPNoDelay = false
		pollLim.TCPQuickAck = false
	}
	ps := &halibut.PollingServer{Certificate: &tlsCert, Trust: halibut.NewTrustStore(trusted...), Limits: pollLim}
	relay := &halibut.Service{}
	relay.Fallback = ps.RelayHandler("")
	relay.FallbackStreams = true
	// Only this operator identity may use the control listener.
	ctl := &halibut.Listener{Certificate: &tlsCert, Trust: halibut.NewTrustStore(cert.Thumbprint()), Service: relay, Limits: lim}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- ps.Serve(pollLn) }()
	go func() { errc <- ctl.Serve(ctlLn) }()
	e.Infof("Polling endpoint on %s (thumbprint %s): Tentacles poll it with `tentacle poll-server --server-comms-address https://<this host>:%d --thumbprint %s`.",
		pollLn.Addr(), cert.Thumbprint(), pollLn.Addr().(*net.TCPAddr).Port, cert.Thumbprint())
	e.Infof("Run commands through it with `tentacle remote exec --poll poll://<id>/ --via https://%s/ --thumbprint <tentacle thumbprint> -- ...`. Ctrl+C stops.", ctlLn.Addr())
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	ctl.Shutdown(context.Background())
	ps.Shutdown(context.Background())
	if runErr != nil && !errors.Is(runErr, halibut.ErrListenerClosed) {
		return fmt.Errorf("serving: %w", runErr)
	}
	return nil
}
