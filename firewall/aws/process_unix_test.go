//go:build unix

package aws

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestCredentialProcess runs a profile's credential_process, a shell script
// here, as the AWS CLI would.
func TestCredentialProcess(t *testing.T) {
	f := newFakeAWS(t)
	home := fakeEnv(t, f)
	script := func(name, body string) string {
		p := filepath.Join(home, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := script("good.sh", `cat <<JSON
{"Version": 1, "AccessKeyId": "ASIAPROCESS", "SecretAccessKey": "process-secret", "SessionToken": "process-session", "Expiration": "2099-01-01T00:00:00Z"}
JSON
`)
	failing := script("fail.sh", "exit 3\n")
	v2 := script("v2.sh", `echo '{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "B"}'`)
	stale := script("stale.sh", `echo '{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "B", "Expiration": "2001-01-01T00:00:00Z"}'`)
	writeFile(t, os.Getenv("AWS_CONFIG_FILE"), fmt.Sprintf(`
[profile proc]
credential_process = %s "my role"
[profile failing]
credential_process = %s
[profile v2]
credential_process = %s
[profile stale]
credential_process = %s
[profile proc-role]
credential_process = %s
role_arn = arn:aws:iam::123456789012:role/after-process
`, good, failing, v2, stale, good))

	c := wantKey(t, f, Options{Profile: "proc"}, "ASIAPROCESS")
	if c.SecretAccessKey != "process-secret" || c.SessionToken != "process-session" {
		t.Errorf("credentials %+v", c)
	}
	_, err := open(t, f, Options{Profile: "failing"})
	wantUserError(t, err, `the credential_process of profile "failing": exit status 3`)
	_, err = open(t, f, Options{Profile: "v2"})
	wantUserError(t, err, "Version 2")
	_, err = open(t, f, Options{Profile: "stale"})
	wantUserError(t, err, "expired at 2001-01-01T00:00:00Z")

	// The process's keys may assume a role in turn.
	wantKey(t, f, Options{Profile: "proc-role"}, "ASIAROLE1")
	if got := f.called(); len(got) != 1 || got[0] != "AssumeRole by ASIAPROCESS" {
		t.Errorf("calls %v", got)
	}
}
