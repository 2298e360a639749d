package config

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"testing"
)

func mustDecodeBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTrustedServerJSONMatchesUpstream(t *testing.T) {
	list := []TrustedServer{
		{Thumbprint: "ABC", CommunicationStyle: StyleTentaclePassive},
		{Thumbprint: "DEF", CommunicationStyle: StyleTentacleActive, Address: "https://o.example:10943/", SubscriptionID: "poll://abcdefghjkmnpqrstuvw/"},
		{Thumbprint: "K8S", CommunicationStyle: StyleKubernetesTentacle, Address: "https://o/"},
	}
	got, _ := json.Marshal(list)
	want := `[{"Thumbprint":"ABC","CommunicationStyle":1,"Address":null,"Squid":null,"SubscriptionId":null},` +
		`{"Thumbprint":"DEF","CommunicationStyle":2,"Address":"https://o.example:10943/","Squid":null,"SubscriptionId":"poll://abcdefghjkmnpqrstuvw/"},` +
		`{"Thumbprint":"K8S","CommunicationStyle":11,"KubernetesTentacleCommunicationMode":"Polling","Address":"https://o/","Squid":null,"SubscriptionId":null}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back []TrustedServer
	if err := json.Unmarshal(got, &back); err != nil || back[1] != list[1] {
		t.Errorf("round trip: %+v %v", back, err)
	}
}

func TestTrustedServerReadsStyleNamesAndLegacySquid(t *testing.T) {
	s, _ := ParseSettings([]byte(`<octopus-settings><set key="Tentacle.Communication.TrustedOctopusServers">[{"Thumbprint":" abc ","CommunicationStyle":"tentacleactive","Address":"https://o:10943/","Squid":"SQ-1","SubscriptionId":null}]</set></octopus-settings>`))
	list, err := s.TrustedServers()
	if err != nil {
		t.Fatal(err)
	}
	if list[0].Thumbprint != "abc" || list[0].CommunicationStyle != StyleTentacleActive || list[0].SubscriptionID != "poll://sq-1/" {
		t.Errorf("%+v", list[0])
	}
	bad, _ := ParseSettings([]byte(`<octopus-settings><set key="Tentacle.Communication.TrustedOctopusServers">[{</set></octopus-settings>`))
	if _, err := bad.TrustedServers(); err == nil {
		t.Error("corrupt JSON accepted")
	}
}

func TestSubscriptionIDFormat(t *testing.T) {
	re := regexp.MustCompile(`^poll://[a-hj-np-z2-9]{20}/$`)
	seen := map[string]bool{}
	for range 200 {
		id := NewSubscriptionID()
		if !re.MatchString(id) {
			t.Fatalf("%q does not match upstream's alphabet", id)
		}
		seen[id] = true
	}
	if len(seen) != 200 {
		t.Error("subscription ids repeat")
	}
}

func TestNormalizeThumbprint(t *testing.T) {
	for in, want := range map[string]string{
		"0123456789abcdef0123456789abcdef01234567":                      "0123456789ABCDEF0123456789ABCDEF01234567",
		" 01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67 ": "0123456789ABCDEF0123456789ABCDEF01234567",
		"01 23 45 67 89 AB CD EF 01 23 45 67 89 AB CD EF 01 23 45 67":   "0123456789ABCDEF0123456789ABCDEF01234567",
	} {
		if got, err := NormalizeThumbprint(in); err != nil || got != want {
			t.Errorf("%q -> %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "xyz", "0123456789abcdef", "0123456789abcdef0123456789abcdef0123456g"} {
		if _, err := NormalizeThumbprint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
