package plan

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// readmeSection is the README's provision section.
func readmeSection(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	start := strings.Index(s, "## Provisioning in one step: `provision`")
	if start < 0 {
		t.Fatal("README.md has no provision section")
	}
	s = s[start:]
	if end := strings.Index(s[3:], "\n## "); end >= 0 {
		s = s[:end+3]
	}
	return s
}

// TestREADMEDocumentsEveryKeyAndVariable keeps the README's schema, its
// examples and its variable table in step with the code: the examples
// parse, every key of File appears in them, every variable has its row.
func TestREADMEDocumentsEveryKeyAndVariable(t *testing.T) {
	doc := readmeSection(t)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("the provision section has %d YAML examples", len(blocks))
	}
	var all strings.Builder
	for i, b := range blocks {
		if _, err := Parse("README example", []byte(b[1])); err != nil {
			t.Errorf("README example %d does not parse: %v", i+1, err)
		}
		all.WriteString(b[1])
	}
	var missing []string
	var keys func(reflect.Type)
	keys = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && !strings.Contains(all.String(), name+":") {
				missing = append(missing, name)
			}
			keys(f.Type)
		}
	}
	keys(reflect.TypeFor[File]())
	if len(missing) > 0 {
		t.Errorf("keys not shown in the README's examples: %v", missing)
	}
	for _, v := range EnvVars {
		if !strings.Contains(doc, "| `"+v.Name+"` | `"+v.Key+"` |") {
			t.Errorf("the README's variable table has no row for %s", v.Name)
		}
	}
}
