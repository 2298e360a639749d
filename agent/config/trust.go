package config

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// CommunicationStyle is how the agent talks to a server. It is stored as an
// integer, as upstream does; a name is accepted when reading.
type CommunicationStyle int

// The styles upstream knows (Octopus.Client.Model.CommunicationStyle).
const (
	StyleNone               CommunicationStyle = 0
	StyleTentaclePassive    CommunicationStyle = 1 // listening
	StyleTentacleActive     CommunicationStyle = 2 // polling
	StyleKubernetesTentacle CommunicationStyle = 11
)

var styleNames = map[CommunicationStyle]string{
	StyleNone: "None", StyleTentaclePassive: "TentaclePassive",
	StyleTentacleActive: "TentacleActive", StyleKubernetesTentacle: "KubernetesTentacle",
}

func (c CommunicationStyle) String() string {
	if n, ok := styleNames[c]; ok {
		return n
	}
	return strconv.Itoa(int(c))
}

// ParseCommunicationStyle accepts a style name (case-insensitive) or number.
func ParseCommunicationStyle(s string) (CommunicationStyle, bool) {
	s = strings.TrimSpace(s)
	for c, n := range styleNames {
		if strings.EqualFold(n, s) {
			return c, true
		}
	}
	if n, err := strconv.Atoi(s); err == nil {
		if _, ok := styleNames[CommunicationStyle(n)]; ok {
			return CommunicationStyle(n), true
		}
	}
	return 0, false
}

func (c *CommunicationStyle) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = StyleNone
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, ok := ParseCommunicationStyle(s)
		if !ok {
			return fmt.Errorf("unknown communication style %q", s)
		}
		*c = v
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("communication style must be a number or a name, got %s", b)
	}
	*c = CommunicationStyle(n)
	return nil
}

// TrustedServer is one entry of Tentacle.Communication.TrustedOctopusServers.
type TrustedServer struct {
	Thumbprint         string
	CommunicationStyle CommunicationStyle
	// KubernetesTentacleCommunicationMode is only written for the Kubernetes
	// style, as upstream; "" means upstream's default, Polling.
	KubernetesTentacleCommunicationMode string
	Address                             string // "" is null; https://host:port/ or wss://... for polling
	Squid                               string // legacy
	SubscriptionID                      string // poll://xxxxxxxxxxxxxxxxxxxx/ for polling
}

// MarshalJSON writes the fields in upstream's order, with explicit nulls.
func (t TrustedServer) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"Thumbprint":`)
	writeJSONString(&b, t.Thumbprint)
	b.WriteString(`,"CommunicationStyle":` + strconv.Itoa(int(t.CommunicationStyle)))
	if t.CommunicationStyle == StyleKubernetesTentacle {
		mode := t.KubernetesTentacleCommunicationMode
		if mode == "" {
			mode = "Polling"
		}
		b.WriteString(`,"KubernetesTentacleCommunicationMode":`)
		writeJSONString(&b, mode)
	}
	for _, f := range []struct{ name, v string }{{"Address", t.Address}, {"Squid", t.Squid}, {"SubscriptionId", t.SubscriptionID}} {
		b.WriteString(`,"` + f.name + `":`)
		if f.v == "" {
			b.WriteString("null")
		} else {
			writeJSONString(&b, f.v)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false) // Newtonsoft does not escape <, > and &
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

func (t *TrustedServer) UnmarshalJSON(b []byte) error {
	var raw struct {
		Thumbprint                          string
		CommunicationStyle                  CommunicationStyle
		KubernetesTentacleCommunicationMode json.RawMessage
		Address                             *string
		Squid                               *string
		SubscriptionId                      *string
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*t = TrustedServer{Thumbprint: strings.TrimSpace(raw.Thumbprint), CommunicationStyle: raw.CommunicationStyle}
	if len(raw.KubernetesTentacleCommunicationMode) > 0 {
		var s string
		if json.Unmarshal(raw.KubernetesTentacleCommunicationMode, &s) == nil {
			t.KubernetesTentacleCommunicationMode = s
		} else if string(raw.KubernetesTentacleCommunicationMode) == "1" {
			t.KubernetesTentacleCommunicationMode = "Listening"
		}
	}
	if raw.Address != nil {
		t.Address = *raw.Address
	}
	if raw.Squid != nil {
		t.Squid = *raw.Squid
	}
	if raw.SubscriptionId != nil {
		t.SubscriptionID = *raw.SubscriptionId
	}
	return nil
}

// SameServer is upstream's identity of two entries: same thumbprint
// (case-insensitive) and same address.
func (t TrustedServer) SameServer(o TrustedServer) bool {
	return strings.EqualFold(t.Thumbprint, o.Thumbprint) && t.Address == o.Address
}

// Polling reports whether the agent should open polling connections for this
// entry.
func (t TrustedServer) Polling() bool {
	return t.CommunicationStyle == StyleTentacleActive ||
		(t.CommunicationStyle == StyleKubernetesTentacle && !strings.EqualFold(t.KubernetesTentacleCommunicationMode, "Listening"))
}

var thumbprintPattern = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)

// NormalizeThumbprint validates a SHA-1 thumbprint and returns it in upper
// case. Spaces and colons, as certificate viewers print them, are removed.
func NormalizeThumbprint(s string) (string, error) {
	t := strings.NewReplacer(" ", "", ":", "", "\u200e", "").Replace(strings.TrimSpace(s))
	if !thumbprintPattern.MatchString(t) {
		return "", Userf("%q is not a certificate thumbprint: expected 40 hexadecimal characters (a SHA-1 thumbprint such as the one `tentacle show-thumbprint` or the Octopus Server's Configuration > Thumbprint page shows).", s)
	}
	return strings.ToUpper(t), nil
}

// subscriptionAlphabet is upstream's: A-Z without I and O, and 2-9.
const subscriptionAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// NewSubscriptionID returns a polling subscription id, poll://<20>/, drawn
// from upstream's alphabet and lower-cased.
func NewSubscriptionID() string {
	var b strings.Builder
	b.WriteString("poll://")
	for range 20 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(subscriptionAlphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b.WriteByte(subscriptionAlphabet[n.Int64()] | 0x20) // lower-case; digits are unaffected
	}
	b.WriteString("/")
	return b.String()
}

// NormalizeServerAddress turns a polling address into the form upstream
// stores: scheme://host[:port]/path with a trailing slash on an empty path.
func NormalizeServerAddress(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "", Userf("%q is not a valid server address: expected something like https://octopus.example:10943/ or wss://octopus.example/OctopusComms.", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), nil
}

// AddOrUpdateServer replaces the entry for the same server (thumbprint and
// address) or appends srv, as upstream.
func AddOrUpdateServer(list []TrustedServer, srv TrustedServer) []TrustedServer {
	for i := range list {
		if list[i].SameServer(srv) {
			list[i] = srv
			return list
		}
	}
	return append(list, srv)
}
