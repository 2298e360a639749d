package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/files"
	"github.com/tentacle-go/tentacle/agent/halibut"
	"github.com/tentacle-go/tentacle/agent/tentacleclient"
)

// RemoteCmd is the operator's side: it drives any Tentacle (ours or
// upstream's) through the same protocol an Octopus Server uses.
type RemoteCmd struct {
	Exec           RemoteExecCmd           `cmd:"" name:"exec" help:"Run a script on a Tentacle, streaming its output; exits with the script's exit code"`
	Upload         RemoteUploadCmd         `cmd:"" name:"upload" help:"Send a file to a Tentacle"`
	Download       RemoteDownloadCmd       `cmd:"" name:"download" help:"Fetch a file from a Tentacle"`
	Capabilities   RemoteCapabilitiesCmd   `cmd:"" name:"capabilities" help:"Show the services a Tentacle supports"`
	Serve          RemoteServeCmd          `cmd:"" name:"serve" help:"Run a polling endpoint that polling Tentacles connect to, for other remote commands to use with --via"`
	NewCertificate RemoteNewCertificateCmd `cmd:"" name:"new-certificate" help:"Create (or show) the operator certificate that Tentacles must trust"`
}

// remoteTarget says which Tentacle to talk to and as whom.
type remoteTarget struct {
	Endpoint   string        `name:"endpoint" help:"A listening Tentacle, e.g. https://web01:10933/" placeholder:"URL"`
	Poll       string        `name:"poll" help:"A polling Tentacle's subscription, e.g. poll://abcdefghjkmnpqrstuvw/; this command then acts as its Octopus Server on --listen" placeholder:"ID"`
	Listen     string        `name:"listen" default:":10943" help:"With --poll: the address to accept the polling Tentacle on" placeholder:"ADDR"`
	Via        string        `name:"via" help:"With --poll: reach the Tentacle through a running remote serve, e.g. https://127.0.0.1:10944/" placeholder:"URL"`
	Thumbprint string        `name:"thumbprint" help:"The Tentacle's certificate thumbprint (tentacle show-thumbprint)" placeholder:"THUMBPRINT"`
	Cert       string        `name:"cert" help:"The operator certificate (PFX); default: the one remote new-certificate made" placeholder:"PFX"`
	Password   string        `name:"password" help:"Password of --cert" placeholder:"PASSWORD" sensitive:""`
	Timeout    time.Duration `name:"connect-timeout" default:"2m" help:"With --poll: how long to wait for the Tentacle to connect"`
}

// defaultOperatorPFX is where the operator identity lives when --cert is not given.
func defaultOperatorPFX(e *Env) string {
	if d := e.Getenv("TENTACLE_OPERATOR_CERT"); d != "" {
		return d
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = filepath.Join(e.Cwd, ".config")
	}
	return filepath.Join(dir, "tentacle", "operator.pfx")
}

// tickets keeps TLS session tickets beside the default operator certificate,
// so that the next command resumes its session with the same Tentacle
// instead of a full handshake (halibut.TicketFiles). Not with --cert: a
// ticket lets its reader act as the operator without the key, which would
// undo the password of a protected PFX.
func (t *remoteTarget) tickets(e *Env) *halibut.TicketFiles {
	if t.Cert != "" {
		return nil
	}
	return &halibut.TicketFiles{Dir: filepath.Join(filepath.Dir(defaultOperatorPFX(e)), "sessions")}
}

// operatorCertificate loads --cert, or the default one (made on first use).
func (t *remoteTarget) operatorCertificate(e *Env) (*config.Certificate, error) {
	if t.Cert != "" {
		data, err := os.ReadFile(absPath(e, t.Cert))
		if err != nil {
			return nil, config.Userf("Cannot read the operator certificate %s: %v.", t.Cert, errors.Unwrap(err))
		}
		return decodeCertificate(data, t.Password, t.Cert)
	}
	cert, _, err := loadOrCreateOperatorCert(e)
	return cert, err
}

func loadOrCreateOperatorCert(e *Env) (*config.Certificate, bool, error) {
	path := defaultOperatorPFX(e)
	if data, err := os.ReadFile(path); err == nil {
		c, err := decodeCertificate(data, "", path)
		return c, false, err
	}
	cert, err := config.GenerateOperatorCertificate()
	if err != nil {
		return nil, false, err
	}
	pfx, err := cert.PKCS12Unprotected()
	if err != nil {
		return nil, false, err
	}
	if _, err := config.EnsurePrivateDirAll(filepath.Dir(path)); err != nil {
		return nil, false, err
	}
	if err := config.WriteSecretFileAtomic(path, pfx); err != nil {
		return nil, false, err
	}
	fmt.Fprintf(e.Stderr, "Created the operator certificate %s (thumbprint %s). Tentacles must trust it: tentacle configure --trust %s\n", path, cert.Thumbprint(), cert.Thumbprint())
	return cert, true, nil
}

// connect returns a caller for the target and a function that releases it.
func (t *remoteTarget) connect(ctx context.Context, e *Env) (contracts.Caller, func(), error) {
	if (t.Endpoint == "") == (t.Poll == "") {
		return nil, nil, config.Userf("Say which Tentacle: --endpoint https://host:10933/ for a listening one, or --poll poll://ID/ for a polling one.")
	}
	if t.Thumbprint == "" {
		return nil, nil, config.Userf("Give the Tentacle's thumbprint with --thumbprint (run `tentacle show-thumbprint` on it).")
	}
	thumb, err := config.NormalizeThumbprint(t.Thumbprint)
	if err != nil {
		return nil, nil, err
	}
	cert, err := t.operatorCertificate(e)
	if err != nil {
		return nil, nil, err
	}
	tlsCert := cert.TLS()
	lim := halibut.DefaultLimits()
	tickets := t.tickets(e)
	if t.Endpoint != "" {
		client := &halibut.Client{Certificate: &tlsCert, Limits: lim, Proxy: halibut.EnvironmentProxy, Tickets: tickets}
		caller, err := contracts.NewCaller(t.Endpoint, thumb, client, nil)
		if err != nil {
			return nil, nil, config.Userf("%v", err)
		}
		return caller, client.Close, nil
	}
	sub, err := halibut.NormalizeSubscriptionID(t.Poll)
	if err != nil {
		return nil, nil, config.Userf("%v", err)
	}
	if t.Via != "" {
		// remote serve holds the polling connection; it runs with the same
		// operator certificate, so that is the thumbprint it presents. It
		// hands the request only to a connection with the Tentacle's.
		client := &halibut.Client{Certificate: &tlsCert, Limits: lim, Tickets: tickets}
		ep := halibut.Endpoint{BaseURI: t.Via, Thumbprint: cert.Thumbprint(), RelayTo: sub, RelayThumbprint: thumb}
		return contracts.ListeningCaller{Client: client, Endpoint: ep}, client.Close, nil
	}
	ln, err := net.Listen("tcp", t.Listen)
	if err != nil {
		return nil, nil, config.Userf("Cannot listen on %s for the polling Tentacle: %v. Pick another address with --listen.", t.Listen, unwrapNetErr(err))
	}
	ps := &halibut.PollingServer{Certificate: &tlsCert, Trust: halibut.NewTrustStore(thumb), Limits: lim}
	go ps.Serve(ln)
	stop := func() { ps.Shutdown(context.Background()) }
	fmt.Fprintf(e.Stderr, "Waiting for %s to connect on %s (it must poll this address and trust thumbprint %s)...\n", sub, ln.Addr(), cert.Thumbprint())
	deadline := time.Now().Add(t.Timeout)
	for ps.Subscribers(sub) == 0 {
		if time.Now().After(deadline) {
			stop()
			return nil, nil, config.Userf("%s did not connect within %s. Check that it polls %s and trusts thumbprint %s.", sub, t.Timeout, ln.Addr(), cert.Thumbprint())
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return contracts.PollingCaller{Server: ps, Subscription: sub, Thumbprint: thumb}, stop, nil
}

// session connects to the target for the length of one command; Ctrl+C
// or SIGTERM cancels ctx.
func (t *remoteTarget) session(e *Env, fn func(ctx context.Context, caller contracts.Caller) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	caller, release, err := t.connect(ctx, e)
	if err != nil {
		return err
	}
	defer release()
	return fn(ctx, caller)
}

func unwrapNetErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// RemoteExecCmd runs a script.
type RemoteExecCmd struct {
	remoteTarget
	File      string   `name:"file" help:"Read the script from this file instead of the arguments" placeholder:"PATH"`
	Files     []string `name:"files" sep:"none" help:"Send this file into the script's working directory (repeatable)" placeholder:"PATH"`
	Isolation string   `name:"isolation" default:"NoIsolation" enum:"NoIsolation,FullIsolation" help:"NoIsolation or FullIsolation"`
	Verbose   bool     `name:"verbose" short:"v" help:"Also show the Tentacle's diagnostic lines"`
	Script    []string `arg:"" optional:"" passthrough:"" help:"The script (bash on Linux and macOS, PowerShell on Windows), after --"`

	inVerbose bool // between ##octopus[stdout-verbose] and ##octopus[stdout-default]
}

func (c *RemoteExecCmd) Run(e *Env) error {
	script := c.Script
	if len(script) > 0 && script[0] == "--" {
		script = script[1:]
	}
	body := strings.Join(script, " ")
	if c.File != "" {
		b, err := os.ReadFile(absPath(e, c.File))
		if err != nil {
			return config.Unreadable("The script", absPath(e, c.File), err, "Check its permissions.")
		}
		body = string(b)
	}
	if strings.TrimSpace(body) == "" {
		return config.Userf("Give the script after --, e.g. `tentacle remote exec --endpoint https://web01:10933/ --thumbprint T -- 'uname -a'`, or with --file.")
	}
	var files []contracts.ScriptFile
	for _, f := range c.Files {
		fh, err := os.Open(absPath(e, f))
		if err != nil {
			return config.Userf("Cannot read %s: %v.", f, errors.Unwrap(err))
		}
		defer fh.Close()
		st, _ := fh.Stat()
		files = append(files, contracts.ScriptFile{Name: filepath.Base(f), Contents: halibut.NewDataStream(st.Size(), fh)})
	}
	isolation := contracts.NoIsolation
	if c.Isolation == "FullIsolation" {
		isolation = contracts.FullIsolation
	}
	return c.session(e, func(ctx context.Context, caller contracts.Caller) error {
		res, err := tentacleclient.Client{Caller: caller}.Run(ctx, tentacleclient.Command{
			Body: body, Files: files, Isolation: isolation, WaitForFinish: time.Second,
		}, tentacleclient.Observer{
			Logs:       func(logs []contracts.ProcessOutput) { c.print(e, logs) },
			Cancelling: func() { fmt.Fprintln(e.Stderr, "Cancelling the script on the Tentacle...") },
		})
		if err != nil {
			return remoteStepError(err)
		}
		if res.CompleteErr != nil {
			fmt.Fprintf(e.Stderr, "warning: could not clean up the script's workspace: %v\n", res.CompleteErr)
		}
		code := int(res.ExitCode)
		if code < 0 || code > 255 {
			return &exitError{code: 1, msg: fmt.Sprintf("The script ended with Tentacle exit code %d (%s).", code, specialExitCode(code))}
		}
		if code != 0 {
			return &exitError{code: code}
		}
		return nil
	})
}

func specialExitCode(code int) string {
	switch code {
	case contracts.ExitCanceled:
		return "cancelled"
	case contracts.ExitTimeout:
		return "timed out waiting for its isolation mutex"
	case contracts.ExitUnknownScript:
		return "unknown script"
	case contracts.ExitUnknownResult:
		return "its result was lost"
	case contracts.ExitFatal:
		return "the Tentacle could not write its log"
	case contracts.ExitPowerShellInvocation:
		return "the shell could not be started"
	}
	return "see the log above"
}

func (c *RemoteExecCmd) print(e *Env, logs []contracts.ProcessOutput) {
	for _, l := range logs {
		// ##octopus[...] lines are service messages for the Octopus task log
		// (verbosity switches and the like), not output; lines marked verbose
		// show only with --verbose, as in Octopus.
		if strings.HasPrefix(l.Text, "##octopus[") {
			switch {
			case strings.HasPrefix(l.Text, "##octopus[stdout-verbose]"):
				c.inVerbose = true
			case strings.HasPrefix(l.Text, "##octopus[stdout-"):
				c.inVerbose = false
			}
			if !c.Verbose {
				continue
			}
		}
		if c.inVerbose && !c.Verbose {
			continue
		}
		switch l.Source {
		case contracts.SourceStdErr:
			fmt.Fprintln(e.Stderr, l.Text)
		case contracts.SourceDebug:
			if c.Verbose {
				fmt.Fprintln(e.Stderr, "[tentacle] "+l.Text)
			}
		default:
			fmt.Fprintln(e.Stdout, l.Text)
		}
	}
}

// remoteError turns a protocol failure into one sentence.
func remoteError(doing string, err error) error {
	var uc *halibut.UnexpectedCertificateError
	var se *halibut.ServerError
	var nr *halibut.NoResponseError
	switch {
	case errors.As(err, &uc):
		return config.Userf("%s: %v. Check --thumbprint against `tentacle show-thumbprint` on the Tentacle.", upperFirst(doing), uc)
	case errors.As(err, &se):
		return config.Userf("%s: the Tentacle answered: %s", upperFirst(doing), se.Message)
	case errors.As(err, &nr):
		return config.Userf("%s: the Tentacle closed the connection without answering %s.%s (%v). It may have stopped or restarted, or it cannot read this request (a Tentacle closes the connection on a request whose types it does not know): see the Tentacle's log.",
			upperFirst(doing), nr.Service, nr.Method, nr.Err)
	}
	return config.Userf("%s: %v", upperFirst(doing), err)
}

// remoteStepError is remoteError for a tentacleclient failure, which says
// its own step.
func remoteStepError(err error) error {
	var step *tentacleclient.StepError
	if errors.As(err, &step) {
		return remoteError(step.Step, step.Err)
	}
	return remoteError("running the script", err)
}

// RemoteUploadCmd sends a file.
type RemoteUploadCmd struct {
	remoteTarget
	Local  string `arg:"" help:"The local file" placeholder:"LOCAL"`
	Remote string `arg:"" help:"Where to put it on the Tentacle (relative paths land under its home)" placeholder:"REMOTE"`
}

func (c *RemoteUploadCmd) Run(e *Env) error {
	f, err := os.Open(absPath(e, c.Local))
	if err != nil {
		return config.Userf("Cannot read %s: %v.", c.Local, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return c.session(e, func(ctx context.Context, caller contracts.Caller) error {
		return c.upload(ctx, e, caller, f, st.Size())
	})
}

func (c *RemoteUploadCmd) upload(ctx context.Context, e *Env, caller contracts.Caller, f *os.File, size int64) error {
	// The file is read and SHA-1'd by a goroutine of its own, in large
	// chunks, while the connection encrypts the previous one: hashing on the
	// encrypting goroutine (a TeeReader) left a core idle.
	h := sha1.New()
	body, feed := io.Pipe()
	go func() {
		_, err := files.CopyHashing(feed, []hash.Hash{h}, f)
		feed.CloseWithError(err)
	}()
	defer body.Close() // stops the reader goroutine when the call fails first
	start := time.Now()
	res, err := contracts.FileTransferClient{Caller: caller}.UploadFile(ctx, c.Remote, body, size)
	if err != nil {
		return remoteError("uploading "+c.Local, err)
	}
	local := hex.EncodeToString(h.Sum(nil))
	if res.Hash != nil && !strings.EqualFold(*res.Hash, local) {
		return config.Userf("The Tentacle stored %s with SHA-1 %s, but the local file's is %s: the upload was corrupted.", res.FullPath, *res.Hash, local)
	}
	e.Infof("Uploaded %s to %s (%d bytes, SHA-1 %s, %s)", c.Local, res.FullPath, res.Length, local, rate(res.Length, time.Since(start)))
	return nil
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "instant"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/d.Seconds()/1e6)
}

// RemoteDownloadCmd fetches a file.
type RemoteDownloadCmd struct {
	remoteTarget
	Remote string `arg:"" help:"The file on the Tentacle (relative paths are under its home)" placeholder:"REMOTE"`
	Local  string `arg:"" help:"Where to write it" placeholder:"LOCAL"`
}

func (c *RemoteDownloadCmd) Run(e *Env) error {
	return c.session(e, func(ctx context.Context, caller contracts.Caller) error { return c.download(ctx, e, caller) })
}

func (c *RemoteDownloadCmd) download(ctx context.Context, e *Env, caller contracts.Caller) error {
	dest := absPath(e, c.Local)
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".download-*")
	if err != nil {
		return config.Userf("Cannot write %s: %v.", dest, errors.Unwrap(err))
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	// No hash: nothing on the wire carries one to check against (TLS
	// already guards the bytes in transit), and SHA-1 was a third of this
	// command's CPU time.
	start := time.Now()
	found, n, err := contracts.FileTransferClient{Caller: caller}.DownloadFile(ctx, c.Remote, chunkedWriter{tmp})
	if err == nil && found {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return remoteError("downloading "+c.Remote, err)
	}
	if !found {
		return config.Userf("The Tentacle has no file %s.", c.Remote)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return err
	}
	e.Infof("Downloaded %s to %s (%d bytes, %s)", c.Remote, dest, n, rate(n, time.Since(start)))
	return nil
}

// chunkedWriter receives a download: its ReadFrom writes 1 MiB chunks while
// the next is read (files.CopyHashing), where io.Copy would write each
// 16 KiB TLS record in turn.
type chunkedWriter struct{ io.Writer }

func (w chunkedWriter) ReadFrom(r io.Reader) (int64, error) {
	return files.CopyHashing(w.Writer, nil, r)
}

// RemoteCapabilitiesCmd lists a Tentacle's services.
type RemoteCapabilitiesCmd struct {
	remoteTarget
	formatFlag
}

func (c *RemoteCapabilitiesCmd) Run(e *Env) error {
	asJSON, err := c.json()
	if err != nil {
		return err
	}
	return c.session(e, func(ctx context.Context, caller contracts.Caller) error {
		caps, err := tentacleclient.Client{Caller: caller}.Capabilities(ctx)
		if err != nil {
			return remoteError("asking for capabilities", err)
		}
		if caps.Assumed {
			fmt.Fprintf(e.Stderr, "The Tentacle has no %s (it is older than mid-2023); these are the services every Tentacle has, as Octopus Server assumes.\n", contracts.CapabilitiesServiceV2Name)
		}
		if asJSON {
			return writeJSON(e, caps.CapabilitiesResponseV2)
		}
		for _, s := range caps.SupportedCapabilities {
			e.Infof("%s", s)
		}
		return nil
	})
}

// RemoteNewCertificateCmd creates or shows the operator identity.
type RemoteNewCertificateCmd struct {
	ExportPfx string `name:"export-pfx" help:"Also write it, password protected, to this PFX file" placeholder:"PATH"`
	Password  string `name:"password" help:"Password for --export-pfx" placeholder:"PASSWORD" sensitive:""`
}

func (c *RemoteNewCertificateCmd) Run(e *Env) error {
	cert, created, err := loadOrCreateOperatorCert(e)
	if err != nil {
		return err
	}
	if !created {
		e.Infof("Using the existing operator certificate %s.", defaultOperatorPFX(e))
	}
	if c.ExportPfx != "" {
		if c.Password == "" {
			return config.Userf("--export-pfx writes a password-protected PFX: give the password with --password.")
		}
		pfx, err := cert.PKCS12(c.Password)
		if err != nil {
			return err
		}
		if err := config.WriteSecretFileAtomic(absPath(e, c.ExportPfx), pfx); err != nil {
			return err
		}
	}
	e.Infof("Thumbprint: %s", cert.Thumbprint())
	return nil
}
