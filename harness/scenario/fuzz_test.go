package scenario

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that whatever it returns is
// either a scenario that holds together or a list of positioned errors,
// and that ParseFile, reading the same bytes from a file, agrees. Its
// seed corpus (the library, testdata and every error case) runs in every
// go test run; go test -fuzz=FuzzParse explores further.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{libraryDir + "/*.yaml", libraryDir + "/*/*.yaml", "testdata/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	if len(seeds) < 8 {
		f.Fatalf("found %d seed files; the library and testdata should give more", len(seeds))
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, c := range errorCases {
		f.Add([]byte(c.yaml))
	}
	// Over the size limit by one byte: refused by the file reader.
	f.Add(append([]byte("name: big\nnamespaces:\n  a: {}\n#"), bytes.Repeat([]byte("x"), MaxFileSize)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			if s != nil {
				t.Fatal("Parse returned a scenario and an error")
			}
			checkErrors(t, data, err)
		} else {
			checkScenario(t, s)
		}
		// The same input gives the same answer.
		s2, err2 := Parse("fuzz.yaml", data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || (s != nil && s2.Name != s.Name) {
			t.Fatalf("Parse is not deterministic: %v / %v", err, err2)
		}
		// Read from a file, the same bytes give the same answer as Parse,
		// or, over the size limit, one problem about the whole file.
		path := filepath.Join(t.TempDir(), "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sf, errf := ParseFile(path)
		want, wantErr := Parse(path, data)
		if len(data) > MaxFileSize {
			want, wantErr = nil, ErrorList{{Pos: Pos{File: path}, Msg: "cannot read: file too large"}}
		}
		if (errf == nil) != (wantErr == nil) || (errf != nil && !strings.HasPrefix(errf.Error(), wantErr.Error())) || (sf == nil) != (want == nil) || (sf != nil && sf.Name != want.Name) {
			t.Fatalf("ParseFile(%s) = %v, %v; Parse of its bytes = %v, %v", path, sf, errf, want, wantErr)
		}
	})
}

// fileLevel are the only problems without a line: they concern the file as
// a whole.
var fileLevel = []string{"the file holds no YAML document", "the YAML document is empty", "too many errors"}

func checkErrors(t *testing.T, data []byte, err error) {
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error %T (%v) is not a non-empty ErrorList", err, err)
	}
	lines := yamlLines(data)
	for _, e := range list {
		if e.Pos.File != "fuzz.yaml" {
			t.Errorf("%v: file %q", e, e.Pos.File)
		}
		if e.Msg == "" {
			t.Errorf("%v: empty message", e)
		}
		if e.Pos.Line == 0 {
			ok := false
			for _, p := range fileLevel {
				ok = ok || strings.HasPrefix(e.Msg, p)
			}
			if !ok {
				t.Errorf("%v: no line, but the problem is not about the whole file", e)
			}
		}
		if e.Pos.Line < 0 || e.Pos.Line > lines || e.Pos.Col < 0 {
			t.Errorf("%v: position outside the %d-line input", e, lines)
		}
	}
	if len(list) > maxErrors+1 {
		t.Errorf("%d errors; the list is capped at %d", len(list), maxErrors)
	}
}

// yamlLines counts the lines of data as the YAML parser does: "\r\n", "\r"
// and "\n" end a line, and so do NEL, LS and PS in UTF-8.
func yamlLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

// checkScenario asserts what every parsed scenario guarantees its consumers.
func checkScenario(t *testing.T, s *Scenario) {
	if checkScenarioName(s.Name) != "" || len(s.Namespaces) == 0 || s.File != "fuzz.yaml" {
		t.Fatalf("scenario %q with %d namespaces from %q", s.Name, len(s.Namespaces), s.File)
	}
	for _, ns := range s.Namespaces {
		if checkNamespaceName(ns.Name) != "" {
			t.Errorf("namespace %q", ns.Name)
		}
		los := 0
		for _, i := range ns.Interfaces {
			ep := Endpoint{ns.Name, i.Name}
			if i.NS != ns.Name || checkIfName(i.Name) != "" || !contains(linkTypes, string(i.Type)) {
				t.Errorf("%s: NS %q type %q", ep, i.NS, i.Type)
			}
			if i.Name == "lo" {
				los++
				if i.Type != TypeLoopback {
					t.Errorf("%s: type %s", ep, i.Type)
				}
			}
			if i.Type == TypeVeth {
				peer := s.Interface(i.Peer)
				if peer == nil || peer.Peer != ep {
					t.Errorf("%s: peer %v does not point back", ep, i.Peer)
				}
			}
			if i.Master != "" {
				if m := ns.Interface(i.Master); m == nil || m.Type != TypeBridge {
					t.Errorf("%s: master %q is not a bridge of %s", ep, i.Master, ns.Name)
				}
			}
			if (i.VXLAN != nil) != (i.Type == TypeVXLAN) || (i.Macvlan != nil) != (i.Type == TypeMacvlan) {
				t.Errorf("%s: type %s with settings vxlan %v macvlan %v", ep, i.Type, i.VXLAN, i.Macvlan)
			}
		}
		if los != 1 {
			t.Errorf("namespace %s has %d lo", ns.Name, los)
		}
		for _, r := range ns.Routes {
			if r.Dev != "" && ns.Interface(r.Dev) == nil {
				t.Errorf("%s: route %q through a missing interface", ns.Name, r.Raw)
			}
		}
		for _, n := range ns.Neighbors {
			if ns.Interface(n.Dev) == nil {
				t.Errorf("%s: neighbor %q on a missing interface", ns.Name, n.Raw)
			}
		}
	}
	for _, l := range s.Links {
		if s.Interface(l.A) == nil || s.Interface(l.B) == nil {
			t.Errorf("link %v-%v has a missing end", l.A, l.B)
		}
	}
	for _, c := range s.Checks {
		set := 0
		for _, p := range []bool{c.Ping != nil, c.Conn != nil, c.ARP != nil, c.Route != nil, c.Link != nil, c.IPTables != nil, c.Sysctl != nil} {
			if p {
				set++
			}
		}
		if set != 1 || lookupKind(c.Kind) == nil || c.Name == "" {
			t.Errorf("check %q of kind %q has %d kinds set", c.Name, c.Kind, set)
		}
		if (c.Expect != ExpectSuccess && c.Expect != ExpectFail) || (c.Cause != "" && (c.Expect != ExpectFail || !IsCauseCode(c.Cause))) {
			t.Errorf("check %q: expect %q cause %q", c.Name, c.Expect, c.Cause)
		}
		var nss []string
		switch {
		case c.Ping != nil:
			nss = append(nss, c.Ping.From)
		case c.Conn != nil:
			nss = append(nss, c.Conn.From, c.Conn.ListenNS)
		case c.ARP != nil:
			nss = append(nss, c.ARP.In)
		case c.Route != nil:
			nss = append(nss, c.Route.In)
		case c.Link != nil:
			nss = append(nss, c.Link.In)
		case c.IPTables != nil:
			nss = append(nss, c.IPTables.In)
		case c.Sysctl != nil:
			nss = append(nss, c.Sysctl.In)
		}
		for _, n := range nss {
			if n != "" && s.Namespace(n) == nil {
				t.Errorf("check %q names missing namespace %q", c.Name, n)
			}
		}
		for _, ep := range c.Path {
			if s.Interface(ep) == nil {
				t.Errorf("check %q: path through missing %s", c.Name, ep)
			}
		}
	}
}
