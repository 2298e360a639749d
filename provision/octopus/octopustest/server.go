// Package octopustest is an in-process fake Octopus Server for tests, in the
// spirit of net/http/httptest: the REST endpoints Tentacle registration uses
// (with the API key check, spaces, environments, tenants, worker pools,
// policies, validation and Octopus's error JSON), and the Halibut side of a
// server — a polling endpoint (TCP and WebSocket) and a listening client —
// so a test can register a real tentacle and then run a script on it.
package octopustest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tentacle-go/tentacle/agent/config"
	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// Named is an environment, tenant, worker pool, policy or proxy.
type Named struct {
	ID, Name, Slug string
}

// TagSet is a tenant tag set.
type TagSet struct {
	ID, Name string
	Tags     []string
}

// Space is one Octopus space and its library.
type Space struct {
	ID, Name, Slug  string
	IsDefault       bool
	Environments    []Named
	Tenants         []Named
	WorkerPools     []Named
	MachinePolicies []Named
	Proxies         []Named
	TagSets         []TagSet
}

// Endpoint is a registered machine's endpoint as the server stores it.
type Endpoint struct {
	CommunicationStyle string
	URI                string `json:"Uri"`
	Thumbprint         string
	ProxyID            *string `json:"ProxyId,omitempty"`
}

// Machine is a registered deployment target or worker.
type Machine struct {
	ID, SpaceID, Name               string
	Worker                          bool
	EnvironmentIDs                  []string
	Roles                           []string
	TenantIDs                       []string
	TenantTags                      []string
	TenantedDeploymentParticipation string
	WorkerPoolIDs                   []string
	MachinePolicyID                 string
	Endpoint                        Endpoint
}

// Server is the fake. Its fields are read-only after NewServer.
type Server struct {
	// URL is the REST API base, e.g. http://127.0.0.1:34567.
	URL string
	// APIKey, BearerToken, Username and Password are the credentials it accepts.
	APIKey, BearerToken, Username, Password string
	// Certificate is the server's communications certificate; its thumbprint is
	// what certificate-global reports and what Tentacles must trust.
	Certificate *config.Certificate
	// PollingAddress is the TCP polling endpoint (https://127.0.0.1:port/).
	PollingAddress string
	// WebSocketAddress is the WebSocket polling endpoint (wss://127.0.0.1:port/OctopusComms).
	WebSocketAddress string
	// Version is what the root document reports.
	Version string

	mu        sync.Mutex
	spaces    []*Space
	noSpaces  bool
	noEnvV2   bool
	pageSize  int
	machines  []*Machine
	nextID    int
	sessions  map[string]bool
	requests  []string
	rest      *httptest.Server
	polling   *halibut.PollingServer
	client    *halibut.Client
	wsServer  *http.Server
	wsCert    *tls.Certificate
	listeners []net.Listener
}

// Option changes a new server.
type Option func(*Server)

// WithoutSpaces makes a pre-spaces server (Octopus 2018 and earlier): no
// Spaces link, everything under /api.
func WithoutSpaces() Option { return func(s *Server) { s.noSpaces = true } }

// WithoutEnvironmentsV2 makes an older server with no environments/v2.
func WithoutEnvironmentsV2() Option { return func(s *Server) { s.noEnvV2 = true } }

// WithPageSize makes collections page after n items, to exercise paging.
func WithPageSize(n int) Option { return func(s *Server) { s.pageSize = n } }

// WithVersion sets the reported server version.
func WithVersion(v string) Option { return func(s *Server) { s.Version = v } }

// WithTLS serves the REST API over HTTPS with a self-signed certificate.
func WithTLS() Option { return func(s *Server) { s.rest = httptest.NewUnstartedServer(nil) } }

// WithWebSocketCertificate makes the WebSocket endpoint present cert, as
// TLS ended at a reverse proxy would, instead of the server's own.
func WithWebSocketCertificate(cert tls.Certificate) Option {
	return func(s *Server) { s.wsCert = &cert }
}

// DefaultSpace is the library every new server starts with.
func DefaultSpace() *Space {
	return &Space{
		ID: "Spaces-1", Name: "Default", Slug: "default", IsDefault: true,
		Environments:    []Named{{"Environments-1", "Development", "development"}, {"Environments-2", "Test", "test"}, {"Environments-3", "Production", "production"}},
		Tenants:         []Named{{"Tenants-1", "Acme Corp", "acme-corp"}, {"Tenants-2", "Globex", "globex"}},
		WorkerPools:     []Named{{"WorkerPools-1", "Default Worker Pool", "default-worker-pool"}, {"WorkerPools-2", "Linux Workers", "linux-workers"}},
		MachinePolicies: []Named{{"MachinePolicies-1", "Default Machine Policy", "default-machine-policy"}},
		Proxies:         []Named{{"Proxies-1", "Corporate Proxy", "corporate-proxy"}},
		TagSets:         []TagSet{{"TagSets-1", "Region", []string{"Europe", "Americas"}}},
	}
}

// NewServer starts a fake Octopus Server on loopback; it stops when the test
// ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cert, err := config.GenerateCertificate()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		APIKey: "API-TESTKEY0000000000000000000000", BearerToken: "test-bearer-token", Username: "admin", Password: "correct horse",
		Certificate: cert, Version: "2025.3.1234", pageSize: 30, sessions: map[string]bool{},
		spaces: []*Space{DefaultSpace(), {ID: "Spaces-2", Name: "Finance", Slug: "finance",
			Environments: []Named{{"Environments-11", "Production", "production"}}, MachinePolicies: []Named{{"MachinePolicies-11", "Default Machine Policy", "default-machine-policy"}}}},
	}
	for _, o := range opts {
		o(s)
	}
	tlsCert := cert.TLS()
	lim := halibut.DefaultLimits()
	s.polling = &halibut.PollingServer{Certificate: &tlsCert, Trust: halibut.NewTrustStore(), Limits: lim}
	s.client = &halibut.Client{Certificate: &tlsCert, Limits: lim}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.polling.Serve(pl)
	s.PollingAddress = "https://" + pl.Addr().String() + "/"
	wl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/OctopusComms", s.polling.WebSocketHandler())
	wsCert := &tlsCert
	if s.wsCert != nil {
		wsCert = s.wsCert
	}
	s.wsServer = &http.Server{Handler: mux, TLSConfig: halibut.WebSocketTLSConfig(wsCert), TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go s.wsServer.ServeTLS(s.polling.WebSocketListener(wl), "", "")
	s.WebSocketAddress = "wss://" + wl.Addr().String() + "/OctopusComms"

	if s.rest != nil { // WithTLS
		s.rest.Config.Handler = http.HandlerFunc(s.serveREST)
		s.rest.StartTLS()
	} else {
		s.rest = httptest.NewServer(http.HandlerFunc(s.serveREST))
	}
	s.URL = s.rest.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops everything.
func (s *Server) Close() {
	s.rest.Close()
	s.polling.Shutdown(context.Background())
	s.wsServer.Close()
	s.client.Close()
}

// Thumbprint is the server certificate's thumbprint.
func (s *Server) Thumbprint() string { return s.Certificate.Thumbprint() }

// Machines returns a snapshot of the registered machines and workers.
func (s *Server) Machines() []Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Machine, len(s.machines))
	for i, m := range s.machines {
		out[i] = *m
	}
	return out
}

// Requests lists the REST requests received ("GET /api/..."), for tests
// that check the flow on the wire.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// AddMachine registers a machine directly (e.g. to make a name taken).
func (s *Server) AddMachine(m Machine) Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	if m.ID == "" {
		m.ID = "Machines-" + strconv.Itoa(s.nextID)
	}
	if m.SpaceID == "" {
		m.SpaceID = "Spaces-1"
	}
	s.machines = append(s.machines, &m)
	s.trustLocked()
	return m
}

// Caller drives the named machine through Halibut, as the server would:
// dialing a listening Tentacle, or queueing for a polling one.
func (s *Server) Caller(name string) (contracts.Caller, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.machines {
		if strings.EqualFold(m.Name, name) {
			return contracts.NewCaller(m.Endpoint.URI, m.Endpoint.Thumbprint, s.client, s.polling)
		}
	}
	return nil, fmt.Errorf("no machine named %s is registered", name)
}

// Subscribers is how many polling connections a subscription has.
func (s *Server) Subscribers(subscription string) int { return s.polling.Subscribers(subscription) }

// trustLocked makes the polling endpoint accept every registered Tentacle.
func (s *Server) trustLocked() {
	var thumbs []string
	for _, m := range s.machines {
		thumbs = append(thumbs, m.Endpoint.Thumbprint)
	}
	s.polling.Trust.Replace(thumbs)
}

// apiError writes Octopus's error body.
func apiError(w http.ResponseWriter, status int, message string, errs ...string) {
	if errs == nil {
		errs = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"ErrorMessage": message, "Errors": errs, "ParsedHelpLinks": []string{}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
