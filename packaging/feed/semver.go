package feed

import (
	"strconv"
	"strings"
)

// SemVer is a parsed Semantic Versioning 2.0.0 version.
type SemVer struct {
	Major, Minor, Patch uint64
	Pre                 string // without the "-"; "" for a release
	Build               string // without the "+"; ignored by Compare
}

// ParseVersion parses MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], without a
// leading v.
func ParseVersion(s string) (SemVer, bool) {
	var v SemVer
	var hasBuild, hasPre bool
	s, v.Build, hasBuild = strings.Cut(s, "+")
	s, v.Pre, hasPre = strings.Cut(s, "-")
	if hasBuild && v.Build == "" || hasPre && v.Pre == "" {
		return SemVer{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return SemVer{}, false
	}
	nums := []*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if !numeric(p) {
			return SemVer{}, false
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return SemVer{}, false
		}
		*nums[i] = n
	}
	for _, ids := range []string{v.Pre, v.Build} {
		if ids == "" {
			continue
		}
		for id := range strings.SplitSeq(ids, ".") {
			if id == "" || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
				return SemVer{}, false
			}
		}
	}
	if v.Pre != "" {
		for id := range strings.SplitSeq(v.Pre, ".") {
			if len(id) > 1 && id[0] == '0' && strings.Trim(id, "0123456789") == "" {
				return SemVer{}, false // numeric identifiers have no leading zeros
			}
		}
	}
	return v, true
}

// numeric is a SemVer numeric identifier: digits, no leading zero.
func numeric(s string) bool {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return false
	}
	return s == "0" || s[0] != '0'
}

// Compare orders versions by SemVer precedence: -1, 0 or 1.
func Compare(a, b SemVer) int {
	for _, d := range [][2]uint64{{a.Major, b.Major}, {a.Minor, b.Minor}, {a.Patch, b.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.Pre == b.Pre:
		return 0
	case a.Pre == "":
		return 1 // a release sorts above its pre-releases
	case b.Pre == "":
		return -1
	}
	as, bs := strings.Split(a.Pre, "."), strings.Split(b.Pre, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := compareIdentifier(as[i], bs[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}

func compareIdentifier(a, b string) int {
	an := strings.Trim(a, "0123456789") == ""
	bn := strings.Trim(b, "0123456789") == ""
	switch {
	case an && bn:
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case an:
		return -1 // numeric identifiers sort below alphanumeric ones
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}
