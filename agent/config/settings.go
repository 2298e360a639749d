package config

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
)

// Settings is one instance's configuration file: the flat key/value
// `octopus-settings` XML document that upstream Tentacle reads and writes.
// Every key is kept, including ones we do not know, so that a file written
// by upstream survives a round trip through us. Keys match case-insensitively
// as upstream; the spelling already in the file wins.
type Settings struct {
	path    string
	entries []setting
	changed bool
}

type setting struct {
	key   string
	value string // "" is upstream's null: written as <set key="k" />
}

// NewSettings returns an empty document that will be saved at path.
func NewSettings(path string) *Settings { return &Settings{path: path} }

// LoadSettings reads the configuration file at path.
func LoadSettings(path string) (*Settings, error) {
	data, err := readFileRetrying(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &UserError{Msg: fmt.Sprintf("The configuration file %s does not exist. Create it with `tentacle create-instance`, or pass --config with the right path.", path)}
		}
		return nil, Unreadable("The configuration file", path, err, "Check its permissions, or run the command as a user who can read it.")
	}
	s, err := ParseSettings(data)
	if err != nil {
		return nil, &UserError{Msg: fmt.Sprintf("The configuration file %s is not a valid Tentacle configuration (%v). Restore it from a backup, or move it away and run `tentacle create-instance` again.", path, err)}
	}
	s.path = path
	return s, nil
}

// ParseSettings parses an octopus-settings document.
func ParseSettings(data []byte) (*Settings, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	dec := xml.NewDecoder(bytes.NewReader(data))
	s := &Settings{}
	depth := 0
	sawRoot := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if t.Name.Local != "octopus-settings" {
					return nil, fmt.Errorf("the root element is <%s>, expected <octopus-settings>", t.Name.Local)
				}
				sawRoot = true
			case depth == 2 && t.Name.Local == "set":
				var raw struct {
					Key   string `xml:"key,attr"`
					Value string `xml:",chardata"`
				}
				if err := dec.DecodeElement(&raw, &t); err != nil {
					return nil, err
				}
				depth--
				if raw.Key == "" {
					return nil, errors.New("a <set> element has no key attribute")
				}
				s.put(raw.Key, raw.Value)
			default:
				// Upstream's XmlSerializer ignores unknown elements; so do we.
				if err := dec.Skip(); err != nil {
					return nil, err
				}
				depth--
			}
		case xml.EndElement:
			depth--
		}
	}
	if !sawRoot {
		return nil, errors.New("there is no <octopus-settings> element")
	}
	return s, nil
}

func (s *Settings) find(key string) int {
	for i, e := range s.entries {
		if strings.EqualFold(e.key, key) {
			return i
		}
	}
	return -1
}

// put sets without marking the document changed (used while parsing; a
// duplicate key keeps the last value, as upstream's dictionary fill does).
func (s *Settings) put(key, value string) {
	if i := s.find(key); i >= 0 {
		s.entries[i].value = value
		return
	}
	s.entries = append(s.entries, setting{key: key, value: value})
}

// Path is where the document is saved.
func (s *Settings) Path() string { return s.path }

// Get returns the value of key. A missing, empty or blank value is "unset",
// as upstream reads it.
func (s *Settings) Get(key string) (string, bool) {
	i := s.find(key)
	if i < 0 || strings.TrimSpace(s.entries[i].value) == "" {
		return "", false
	}
	return s.entries[i].value, true
}

// Set stores value under key and reports whether the document changed. An
// empty value is upstream's null.
func (s *Settings) Set(key, value string) bool {
	if strings.TrimSpace(value) == "" {
		value = ""
	}
	i := s.find(key)
	if i < 0 {
		if value == "" {
			return false // absent and null read the same
		}
		s.entries = append(s.entries, setting{key: key, value: value})
		s.changed = true
		return true
	}
	if s.entries[i].value == value {
		return false
	}
	s.entries[i].value = value
	s.changed = true
	return true
}

// Keys lists every key in the document, sorted as it is saved.
func (s *Settings) Keys() []string {
	keys := make([]string, len(s.entries))
	for i, e := range s.entries {
		keys[i] = e.key
	}
	sort.Strings(keys)
	return keys
}

// Changed reports whether Set has changed anything since loading.
func (s *Settings) Changed() bool { return s.changed }

// Marshal renders the document the way upstream's XmlSerializer does: a UTF-8
// BOM, the XML declaration, the two namespace declarations, keys in ordinal
// order, two-space indent, and only &, < and > escaped in values.
func (s *Settings) Marshal() []byte {
	nl := "\n"
	if runtime.GOOS == "windows" {
		nl = "\r\n"
	}
	var b bytes.Buffer
	b.WriteString("\uFEFF<?xml version=\"1.0\" encoding=\"utf-8\"?>" + nl)
	b.WriteString(`<octopus-settings xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"`)
	if len(s.entries) == 0 {
		b.WriteString(" />")
		return b.Bytes()
	}
	b.WriteString(">" + nl)
	sorted := append([]setting(nil), s.entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].key < sorted[j].key })
	for _, e := range sorted {
		b.WriteString(`  <set key="` + escapeXML(e.key, true) + `"`)
		if e.value == "" {
			b.WriteString(" />" + nl)
			continue
		}
		b.WriteString(">" + escapeXML(e.value, false) + "</set>" + nl)
	}
	b.WriteString("</octopus-settings>")
	return b.Bytes()
}

func escapeXML(s string, attr bool) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			if attr {
				b.WriteString("&quot;")
			} else {
				b.WriteRune(r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Save writes the document atomically, owner-only (0600) whatever the mode
// of the file it replaces: it holds, or will hold, the certificate.
func (s *Settings) Save() error {
	if err := WriteSecretFileAtomic(s.path, s.Marshal()); err != nil {
		return err
	}
	s.changed = false
	return nil
}

// Update loads the configuration file at path under an exclusive lock, lets
// fn change it, and saves it only if something changed. Two processes
// updating the same file at once are serialised, so neither loses the
// other's change. When fn returns an error nothing is written.
func Update(path string, fn func(*Settings) error) (changed bool, err error) {
	if _, err := os.Stat(path); err != nil {
		_, err = LoadSettings(path) // the same clear message a read gives
		return false, err
	}
	unlock, err := lockFile(path)
	if err != nil {
		return false, err
	}
	defer unlock()
	s, err := LoadSettings(path)
	if err != nil {
		return false, err
	}
	if err := fn(s); err != nil {
		return false, err
	}
	if !s.Changed() {
		return false, nil
	}
	return true, s.Save()
}

// UserError is a failure the user caused and can fix; its message says what
// was wrong and what to do. The CLI maps it to exit code 1.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

// Userf builds a UserError.
func Userf(format string, args ...any) error { return &UserError{Msg: fmt.Sprintf(format, args...)} }

// Unreadable is the UserError for a file that exists but could not be read
// (err from os.ReadFile): what names it ("The configuration file"), hint
// says what to do. A directory where the file should be is named as such:
// Windows reports reading one as "Incorrect function." (Wine: "Invalid
// function."), which says nothing useful.
func Unreadable(what, path string, err error, hint string) error {
	if isDir(path) {
		return Userf("%s %s is a directory, not a file. Give the path of the file itself.", what, path)
	}
	reason := err
	if inner := errors.Unwrap(err); inner != nil {
		reason = inner
	}
	// Windows' messages end with a period; ours follows.
	return Userf("%s %s cannot be read: %s. %s", what, path, strings.TrimRight(strings.TrimSpace(reason.Error()), "."), hint)
}
