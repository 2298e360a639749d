//go:build unix

// Package mototest runs a moto_server (a fake EC2 API) on loopback for the
// tests that open ports in security groups: firewall/aws and the provision
// end-to-end test.
package mototest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
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

// call sends one EC2 Query action to moto at endpoint and decodes the answer
// into out. Moto does not check signatures but reads the service and region
// from the Authorization header's credential scope, so the header names
// them (ec2, us-east-1) and signs nothing. Tests use it to prepare and read back what the code
// under test changed, independently of that code's own client.
func call(endpoint, action string, params url.Values, out any) error {
	params.Set("Action", action)
	params.Set("Version", "2016-11-15")
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(params.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto %s: %s: %s", action, resp.Status, body)
	}
	return xml.Unmarshal(body, out)
}

// CreateSecurityGroup makes a security group in moto, as a user would
// beforehand, and returns its ID.
func CreateSecurityGroup(endpoint, name string) (string, error) {
	var out struct {
		GroupID string `xml:"groupId"`
	}
	if err := call(endpoint, "CreateSecurityGroup", url.Values{"GroupName": {name}, "GroupDescription": {"test"}}, &out); err != nil {
		return "", err
	}
	if out.GroupID == "" {
		return "", fmt.Errorf("moto CreateSecurityGroup %s: no group ID in the answer", name)
	}
	return out.GroupID, nil
}

// Ingress is a group's inbound rules as moto holds them, "proto first-last
// cidr ..." joined by "; ".
func Ingress(endpoint, group string) (string, error) {
	var out struct {
		Groups []struct {
			Permissions []struct {
				Protocol string `xml:"ipProtocol"`
				From     int    `xml:"fromPort"`
				To       int    `xml:"toPort"`
				IPv4     []struct {
					CIDR string `xml:"cidrIp"`
				} `xml:"ipRanges>item"`
			} `xml:"ipPermissions>item"`
		} `xml:"securityGroupInfo>item"`
	}
	if err := call(endpoint, "DescribeSecurityGroups", url.Values{"GroupId.1": {group}}, &out); err != nil {
		return "", err
	}
	if len(out.Groups) != 1 {
		return "", fmt.Errorf("moto DescribeSecurityGroups %s: %d groups", group, len(out.Groups))
	}
	var rules []string
	for _, p := range out.Groups[0].Permissions {
		r := fmt.Sprintf("%s %d-%d", p.Protocol, p.From, p.To)
		for _, ip := range p.IPv4 {
			r += " " + ip.CIDR
		}
		rules = append(rules, r)
	}
	return strings.Join(rules, "; "), nil
}
