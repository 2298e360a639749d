package aws

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseINI(t *testing.T) {
	got := parseINI([]byte(`# a comment
; another
[default]
region = eu-west-1   # inline comment
aws_access_key_id=AKID;not-a-comment
Output = json
s3 =
  max_concurrent_requests = 20
  addressing_style = path
cli_pager =

[  profile   spaced  ]
role_arn = arn:aws:iam::1:role/x ; inline
[broken
key = dropped
[sso-session corp]
sso_region = us-east-1
`))
	want := map[string]section{
		"default":          {"region": "eu-west-1", "aws_access_key_id": "AKID;not-a-comment", "output": "json", "s3": "", "cli_pager": ""},
		"profile spaced":   {"role_arn": "arn:aws:iam::1:role/x"},
		"sso-session corp": {"sso_region": "us-east-1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestSharedConfigFiles: which sections count in which file, and the
// credentials file winning over the config file.
func TestSharedConfigFiles(t *testing.T) {
	home := isolate(t)
	writeFile(t, filepath.Join(home, "config"), `
[default]
region = us-east-1
aws_access_key_id = FROMCONFIG
[profile dev]
region = eu-west-1
[plain]
region = ignored-without-profile-prefix
[profile default]
output = json
[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
`)
	writeFile(t, filepath.Join(home, "credentials"), `
[default]
aws_access_key_id = FROMCREDENTIALS
aws_secret_access_key = s
[dev]
aws_access_key_id = DEV
[profile odd]
aws_access_key_id = literal-section-name
`)
	cfg, err := loadSharedConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]section{
		"default":     {"region": "us-east-1", "aws_access_key_id": "FROMCREDENTIALS", "aws_secret_access_key": "s", "output": "json"},
		"dev":         {"region": "eu-west-1", "aws_access_key_id": "DEV"},
		"profile odd": {"aws_access_key_id": "literal-section-name"},
	}
	if !reflect.DeepEqual(cfg.profiles, want) {
		t.Errorf("profiles %v\nwant     %v", cfg.profiles, want)
	}
	if cfg.ssoSessions["corp"]["sso_start_url"] != "https://corp.awsapps.com/start" {
		t.Errorf("sso sessions %v", cfg.ssoSessions)
	}

	// The default paths are under HOME; ~ in the variables is HOME too.
	t.Setenv("AWS_CONFIG_FILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere/credentials")
	writeFile(t, filepath.Join(home, ".aws", "config"), "[profile home]\nregion = x\n")
	writeFile(t, filepath.Join(home, "elsewhere", "credentials"), "[tilde]\naws_access_key_id = T\n")
	cfg, err = loadSharedConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.profiles["home"]["region"] != "x" || cfg.profiles["tilde"]["aws_access_key_id"] != "T" {
		t.Errorf("profiles %v", cfg.profiles)
	}

	// Missing files are empty; unreadable ones are an error.
	os.RemoveAll(filepath.Join(home, ".aws"))
	if cfg, err = loadSharedConfig(); err != nil || len(cfg.profiles) != 1 {
		t.Errorf("%v %v", cfg.profiles, err)
	}
	t.Setenv("AWS_CONFIG_FILE", home) // a directory
	if _, err := loadSharedConfig(); err == nil {
		t.Error("a directory as the config file was read")
	}
}
