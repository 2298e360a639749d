//go:build unix

// Package mototest runs a moto_server (a fake EC2 API) on loopback for the
// tests that open ports in security groups: firewall/aws and the provision
// end-to-end test.
package mototest

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// Server is a running moto_server.
type Server struct {
	// Endpoint is its base URL, http://127.0.0.1:port.
	Endpoint string
	cmd      *exec.Cmd
}

// Start starts moto_server on a free loopback port and waits (at most 30 s)
// until it answers. When it cannot, the returned reason is the sentence a
// test skips with, and the server is nil.
func Start() (*Server, string) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, "SKIP: moto_server is not installed (it comes with the Go image's Python: pip install 'moto[server]')"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "SKIP: no loopback port: " + err.Error()
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "SKIP: moto_server does not start: " + err.Error()
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(s.Endpoint + "/moto-api/"); err == nil {
			resp.Body.Close()
			return s, ""
		}
	}
	s.Stop()
	return nil, "SKIP: moto_server did not answer within 30s"
}

// Reset forgets every resource, for a test that starts from nothing.
func (s *Server) Reset() error {
	resp, err := http.Post(s.Endpoint+"/moto-api/reset", "", nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Stop ends moto_server and the processes it started.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	s.cmd.Wait()
}
