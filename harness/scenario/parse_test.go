package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func mustParse(t *testing.T, src string) *Scenario {
	t.Helper()
	s, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

// TestFormatExample parses the NAT example of the format page, kept
// verbatim in testdata, and compares the whole model with a golden file
// (go test -update rewrites it). The assertions after it spell out what the
// golden file must say, so that a wrong golden file cannot be accepted by
// accident.
func TestFormatExample(t *testing.T) {
	const file = "testdata/nat-example.yaml"
	s, err := ParseFile(file)
	if err != nil {
		t.Fatalf("the format page's example must parse as written: %v", err)
	}
	got, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/nat-example.golden.json"
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("model differs from %s; run go test -update and review the diff\n%s", golden, got)
	}

	if s.Name != "nat-egress" || !strings.HasPrefix(s.Description, "Two containers on br0") || s.File != file {
		t.Errorf("name, description, file = %q, %q, %q", s.Name, s.Description, s.File)
	}
	if got, want := nsNames(s), []string{"host", "ns1", "ns2", "internet"}; !reflect.DeepEqual(got, want) {
		t.Errorf("namespaces = %v, want %v (file order)", got, want)
	}
	host := s.Namespace("host")
	if got, want := ifNames(host), []string{"lo", "br0", "veth1", "veth2", "eth0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("host interfaces = %v, want %v (implicit lo first, then file order)", got, want)
	}
	for _, tc := range []struct {
		ep     Endpoint
		typ    LinkType
		master string
		peer   Endpoint
		addrs  string
	}{
		{Endpoint{"host", "lo"}, TypeLoopback, "", Endpoint{}, ""},
		{Endpoint{"host", "br0"}, TypeBridge, "", Endpoint{}, "10.0.0.1/24"},
		{Endpoint{"host", "veth1"}, TypeVeth, "br0", Endpoint{"ns1", "veth_1"}, ""},
		{Endpoint{"host", "eth0"}, TypeVeth, "", Endpoint{"internet", "wan0"}, "198.51.100.2/24"},
		{Endpoint{"ns1", "veth_1"}, TypeVeth, "", Endpoint{"host", "veth1"}, "10.0.0.2/24"},
		{Endpoint{"internet", "wan0"}, TypeVeth, "", Endpoint{"host", "eth0"}, "198.51.100.1/24"},
		{Endpoint{"internet", "lo"}, TypeLoopback, "", Endpoint{}, "203.0.113.8/32"},
	} {
		i := s.Interface(tc.ep)
		if i == nil {
			t.Errorf("%s missing", tc.ep)
			continue
		}
		if i.Type != tc.typ || i.Master != tc.master || i.Peer != tc.peer || prefixes(i.Addresses) != tc.addrs || !i.Up {
			t.Errorf("%s = type %s master %q peer %v addresses %q up %v; want %s %q %v %q up", tc.ep,
				i.Type, i.Master, i.Peer, prefixes(i.Addresses), i.Up, tc.typ, tc.master, tc.peer, tc.addrs)
		}
	}
	if r := host.Routes[0]; r.Dst != netip.MustParsePrefix("0.0.0.0/0") || r.Via != netip.MustParseAddr("198.51.100.1") || r.Dev != "" {
		t.Errorf("host route = %+v", r)
	}
	if r := s.Namespace("ns1").Routes[0]; r.Dev != "veth_1" || r.Via != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("ns1 route = %+v", r)
	}
	if got := host.Sysctls; len(got) != 1 || got[0].Key != "net.ipv4.ip_forward" || got[0].Value != "1" {
		t.Errorf("host sysctls = %+v", got)
	}
	wantIPT := []IPTablesCommand{
		{Table: "nat", Op: "-A", Chain: "POSTROUTING", Args: []string{"-s", "10.0.0.0/24", "!", "-o", "br0", "-j", "MASQUERADE"}},
		{Table: "filter", Op: "-A", Chain: "FORWARD", Args: []string{"-i", "br0", "-o", "eth0", "-j", "ACCEPT"}},
		{Table: "filter", Op: "-A", Chain: "FORWARD", Args: []string{"-i", "eth0", "-o", "br0", "-j", "ACCEPT"}},
	}
	for i, c := range host.IPTables {
		c.Raw, c.Pos = "", Pos{}
		if !reflect.DeepEqual(c, wantIPT[i]) {
			t.Errorf("iptables[%d] = %+v, want %+v", i, c, wantIPT[i])
		}
	}
	var names []string
	for _, c := range s.Checks {
		names = append(names, c.Name)
		if c.Expect != ExpectSuccess {
			t.Errorf("%s: expect %q, want success by default", c.Name, c.Expect)
		}
	}
	wantNames := []string{
		"ping ns1 -> 10.0.0.3",
		"ping ns1 -> 203.0.113.8",
		"route ns1 203.0.113.8",
		"arp ns1 10.0.0.1",
		"iptables host nat/POSTROUTING",
	}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("check names = %q, want %q", names, wantNames)
	}
	if p := s.Checks[0].Ping; p.From != "ns1" || p.To.Addr != netip.MustParseAddr("10.0.0.3") || p.Count != 1 || p.Timeout != time.Second || p.MaxLoss != 0 {
		t.Errorf("ping = %+v, want defaults count 1, timeout 1s, max_loss 0", p)
	}
	if a := s.Checks[3].ARP; a.MACOf != (Endpoint{"host", "br0"}) || a.MAC != nil || a.State != "any" {
		t.Errorf("arp = %+v", a)
	}
	if c := s.Checks[4].IPTables; c.Table != "nat" || c.Rule != "-s 10.0.0.0/24 ! -o br0 -j MASQUERADE" || *c.Packets != (Count{Op: ">", N: 0}) {
		t.Errorf("iptables check = %+v", c)
	}
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// TestInterfaceDefaults covers what the format leaves implicit: lo, veth
// ends named only in links, up, and an explicit lo.
func TestInterfaceDefaults(t *testing.T) {
	s := mustParse(t, `name: t
namespaces:
  a:
    interfaces:
      lo: {up: false, addresses: [127.0.0.2/8]}
      br0: {type: bridge, up: false}
      p0: {master: br0, mtu: 9000, mac: "02:00:00:00:00:01"}
  b:
    lo: {addresses: [192.0.2.1/32]}
links:
  - [a/p1, b/eth0]
  - [a/p0, b/eth1]
`)
	a, b := s.Namespace("a"), s.Namespace("b")
	if got, want := ifNames(a), []string{"lo", "br0", "p0", "p1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("a interfaces = %v, want %v", got, want)
	}
	if got, want := ifNames(b), []string{"lo", "eth0", "eth1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("b interfaces = %v, want %v (lo declared at namespace level)", got, want)
	}
	lo := a.Interface("lo")
	if lo.Up || lo.Type != TypeLoopback || !lo.Declared || prefixes(lo.Addresses) != "127.0.0.2/8" {
		t.Errorf("a/lo = %+v, want declared loopback, down, 127.0.0.2/8", lo)
	}
	if blo := b.Interface("lo"); !blo.Up || prefixes(blo.Addresses) != "192.0.2.1/32" {
		t.Errorf("b/lo = %+v", blo)
	}
	if br := a.Interface("br0"); br.Up {
		t.Error("br0 up despite up: false")
	}
	p0 := a.Interface("p0")
	if p0.Type != TypeVeth || !p0.Up || p0.MTU != 9000 || p0.MAC.String() != "02:00:00:00:00:01" || p0.Peer != (Endpoint{"b", "eth1"}) || !p0.Declared {
		t.Errorf("a/p0 = %+v", p0)
	}
	p1 := a.Interface("p1")
	if p1.Type != TypeVeth || p1.Declared || !p1.Up || p1.Peer != (Endpoint{"b", "eth0"}) || p1.Pos.Line != 11 {
		t.Errorf("a/p1 (only in links) = %+v", p1)
	}
	if got := s.Links; len(got) != 2 || got[0].A != (Endpoint{"a", "p1"}) || got[0].B != (Endpoint{"b", "eth0"}) {
		t.Errorf("links = %+v", got)
	}
}

// TestTypedInterfaces covers vxlan and macvlan settings.
func TestTypedInterfaces(t *testing.T) {
	s := mustParse(t, `name: t
namespaces:
  a:
    interfaces:
      eth0: {addresses: [198.51.100.11/24]}
      vx0: {type: vxlan, vni: 42, local: 198.51.100.11, remote: 203.0.113.12, dstport: 4789, dev: eth0}
      vx1: {type: vxlan, vni: 0x10}
      mv0: {type: macvlan, parent: eth0}
      mv1: {type: macvlan, parent: eth0, mode: vepa}
links:
  - [a/eth0, a/eth1]
`)
	a := s.Namespace("a")
	want := &VXLAN{VNI: 42, Local: netip.MustParseAddr("198.51.100.11"), Remote: netip.MustParseAddr("203.0.113.12"), DstPort: 4789, Dev: "eth0"}
	if got := a.Interface("vx0").VXLAN; !reflect.DeepEqual(got, want) {
		t.Errorf("vx0 = %+v, want %+v", got, want)
	}
	if got := a.Interface("vx1").VXLAN; got.VNI != 16 || got.DstPort != 0 || got.Remote.IsValid() {
		t.Errorf("vx1 = %+v, want VNI 16 and the rest unset", got)
	}
	if got := a.Interface("mv0").Macvlan; *got != (Macvlan{Parent: "eth0"}) {
		t.Errorf("mv0 = %+v", got)
	}
	if got := a.Interface("mv1").Macvlan; *got != (Macvlan{Mode: "vepa", Parent: "eth0"}) {
		t.Errorf("mv1 = %+v", got)
	}
	if a.Interface("eth0").VXLAN != nil || a.Interface("eth0").Macvlan != nil {
		t.Error("eth0 got type settings")
	}
}

// TestTargetFromScenarioAddresses: a target written as NS/IF probes an
// address the scenario gives that interface, never one only the kernel
// has. On lo the kernel's first IPv4 address is 127.0.0.1, which every
// sender reaches on its own lo, so picking it made a ping pass with no
// link at all (issue 13).
func TestTargetFromScenarioAddresses(t *testing.T) {
	s := mustParse(t, `name: t
namespaces:
  a:
    interfaces:
      eth0: {type: dummy, addresses: [10.0.0.1/24]}
  b:
    lo: {addresses: [127.0.0.2/8, "fe80::1/64", "2001:db8::9/128", 192.0.2.9/32]}
  c:
    lo: {addresses: ["fe80::1/64", "::1/128", "2001:db8::7/128"]}
checks:
  - ping: {from: a, to: b/lo}
  - ping: {from: a, to: c/lo}
`)
	for i, want := range []string{"192.0.2.9", "2001:db8::7"} {
		if got := s.Checks[i].Ping.To.Addr; got != netip.MustParseAddr(want) {
			t.Errorf("check %d (%s) probes %v, want %s", i, s.Checks[i].Name, got, want)
		}
	}
}

// TestChecks covers every check kind, the two places common keys may sit,
// derived names and defaults.
func TestChecks(t *testing.T) {
	s := mustParse(t, base+`checks:
  - ping: {from: a, to: b/eth0, count: 3, timeout: 500ms, max_loss: 50%, path: [a/eth0, b/eth0], snat: 10.0.0.1}
  - ping: {from: a, to: 10.0.0.9}
    name: nobody there
    expect: fail
    cause: address-missing
  - tcp: {from: a, to: "10.0.0.2:8080", listen: "b:80", expect: fail, cause: no-listener, dnat: 10.0.0.2}
  - udp: {from: a, to: "[2001:db8::2]:53"}
  - arp: {in: a, ip: 10.0.0.2, mac: "02:00:00:00:00:02", dev: eth0, state: reachable}
  - route: {in: a, to: 10.0.0.2, dev: eth0, src: 10.0.0.1}
  - route: {in: a, to: 192.0.2.1}
    expect: fail
  - link: {in: a, name: eth0, up: true, master: "", mtu: 1500, addresses: [10.0.0.1/24]}
    name: the link check's own name sits beside it
  - iptables: {in: a, chain: INPUT, rule: "-j ACCEPT", packets: ">= 2"}
  - sysctl: {in: a, key: net.ipv4.ip_forward, value: 0}
`)
	c := s.Checks
	if len(c) != 10 {
		t.Fatalf("%d checks, want 10", len(c))
	}
	wantPing := &PingCheck{From: "a", To: Target{Addr: netip.MustParseAddr("10.0.0.2"), If: Endpoint{"b", "eth0"}}, Count: 3, Timeout: 500 * time.Millisecond, MaxLoss: 0.5}
	if !reflect.DeepEqual(c[0].Ping, wantPing) || c[0].Name != "ping a -> b/eth0" {
		t.Errorf("check 0 = %q %+v", c[0].Name, c[0].Ping)
	}
	if !reflect.DeepEqual(c[0].Path, []Endpoint{{"a", "eth0"}, {"b", "eth0"}}) || c[0].SNAT != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("check 0 trace assertions = %v %v", c[0].Path, c[0].SNAT)
	}
	if c[1].Name != "nobody there" || c[1].Expect != ExpectFail || c[1].Cause != CauseAddressMissing {
		t.Errorf("check 1 = %q %q %q", c[1].Name, c[1].Expect, c[1].Cause)
	}
	wantConn := &ConnCheck{Proto: "tcp", From: "a", To: netip.MustParseAddrPort("10.0.0.2:8080"), ListenNS: "b", ListenPort: 80, Timeout: time.Second}
	if !reflect.DeepEqual(c[2].Conn, wantConn) || c[2].Name != "tcp a -> 10.0.0.2:8080 (listen b:80)" || c[2].Cause != CauseNoListener || c[2].DNAT != netip.MustParseAddr("10.0.0.2") {
		t.Errorf("check 2 = %q %+v", c[2].Name, c[2].Conn)
	}
	if c[3].Conn.Proto != "udp" || c[3].Conn.ListenNS != "" || c[3].Name != "udp a -> [2001:db8::2]:53" {
		t.Errorf("check 3 = %q %+v", c[3].Name, c[3].Conn)
	}
	if a := c[4].ARP; a.MAC.String() != "02:00:00:00:00:02" || a.Dev != "eth0" || a.State != "reachable" || c[4].Name != "arp a 10.0.0.2" {
		t.Errorf("check 4 = %q %+v", c[4].Name, a)
	}
	if r := c[5].Route; r.Dev != "eth0" || r.Src != netip.MustParseAddr("10.0.0.1") || r.Via.IsValid() || c[5].Name != "route a 10.0.0.2" {
		t.Errorf("check 5 = %q %+v", c[5].Name, r)
	}
	if c[6].Expect != ExpectFail || c[6].Cause != "" {
		t.Errorf("check 6 = %+v", c[6])
	}
	l := c[7].Link
	if l.Name != "eth0" || l.Up == nil || !*l.Up || l.Master == nil || *l.Master != "" || l.MTU != 1500 || prefixes(l.Addresses) != "10.0.0.1/24" || c[7].Name != "the link check's own name sits beside it" {
		t.Errorf("check 7 = %q %+v", c[7].Name, l)
	}
	if i := c[8].IPTables; i.Table != "filter" || i.Chain != "INPUT" || *i.Packets != (Count{Op: ">=", N: 2}) || c[8].Name != "iptables a filter/INPUT" {
		t.Errorf("check 8 = %q %+v", c[8].Name, i)
	}
	if y := c[9].Sysctl; y.Key != "net.ipv4.ip_forward" || y.Value != "0" || c[9].Name != "sysctl a net.ipv4.ip_forward" {
		t.Errorf("check 9 = %q %+v", c[9].Name, y)
	}
	if c[0].Pos != (Pos{"t.yaml", 12, 5}) || c[1].Pos != (Pos{"t.yaml", 13, 5}) {
		t.Errorf("checks at %v and %v, want their list items", c[0].Pos, c[1].Pos)
	}
}

// TestAliasesAndMerges: YAML anchors, aliases and merge keys work like
// writing the values out, with keys written in place winning.
func TestAliasesAndMerges(t *testing.T) {
	s := mustParse(t, `name: t
namespaces:
  a:
    interfaces:
      br0: &br {type: bridge, mtu: 1400, addresses: [10.0.0.1/24]}
      br1:
        <<: *br
        addresses: [10.0.1.1/24]
    routes: &routes
      - default via 10.0.0.254
  b:
    interfaces:
      br0: *br
    routes: *routes
`)
	a, b := s.Namespace("a"), s.Namespace("b")
	if br1 := a.Interface("br1"); br1.Type != TypeBridge || br1.MTU != 1400 || prefixes(br1.Addresses) != "10.0.1.1/24" {
		t.Errorf("a/br1 = %+v, want the anchor's type and mtu with its own address", br1)
	}
	if br0 := b.Interface("br0"); br0.Type != TypeBridge || prefixes(br0.Addresses) != "10.0.0.1/24" {
		t.Errorf("b/br0 = %+v", br0)
	}
	if len(b.Routes) != 1 || b.Routes[0].Raw != "default via 10.0.0.254" {
		t.Errorf("b routes = %+v", b.Routes)
	}
}

// TestMergeSelfReference: an anchor that merges itself must end in an error,
// not in endless recursion.
func TestMergeSelfReference(t *testing.T) {
	_, err := Parse("t.yaml", []byte("name: t\nnamespaces:\n  a: &x\n    <<: *x\n"))
	if err == nil {
		t.Fatal("Parse accepted a self-merging anchor")
	}
	if !IsInputError(err) {
		t.Fatalf("error %v is not an input error", err)
	}
}

// TestTooManyErrors: a file with many problems reports the first ones and
// says that it stopped.
func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: t\nnamespaces:\n  a:\n    routes:\n")
	for i := 0; i < 30; i++ {
		b.WriteString("      - bogus\n")
	}
	_, err := Parse("t.yaml", []byte(b.String()))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	if len(list) != maxErrors+1 {
		t.Fatalf("%d errors, want %d and a last line", len(list), maxErrors)
	}
	if list[0].Pos.Line != 5 || list[maxErrors-1].Pos.Line != 5+maxErrors-1 {
		t.Errorf("first and last at lines %d and %d", list[0].Pos.Line, list[maxErrors-1].Pos.Line)
	}
	if got := list[maxErrors].Error(); got != "t.yaml: too many errors; the first 20 are shown" {
		t.Errorf("last line = %q", got)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	scenario := func(name string) string { return "name: " + name + "\nnamespaces:\n  a: {}\n" }
	writeFile(t, filepath.Join(dir, "lib", "b.yaml"), scenario("b"))
	writeFile(t, filepath.Join(dir, "lib", "a.yml"), scenario("a"))
	writeFile(t, filepath.Join(dir, "lib", "sub", "c.yaml"), scenario("c"))
	writeFile(t, filepath.Join(dir, "lib", "notes.txt"), "not a scenario")
	writeFile(t, filepath.Join(dir, "lib", ".hidden", "h.yaml"), "not: [valid")
	writeFile(t, filepath.Join(dir, "one.yaml"), scenario("one"))
	writeFile(t, filepath.Join(dir, "dup", "x.yaml"), scenario("a"))
	writeFile(t, filepath.Join(dir, "empty", "README"), "")
	writeFile(t, filepath.Join(dir, "bad", "bad.yaml"), "name: BAD\nnamespaces:\n  a: {}\n")

	names := func(ss []*Scenario) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	lib := filepath.Join(dir, "lib")
	ss, err := Load(filepath.Join(dir, "one.yaml"), lib, filepath.Join(lib, "b.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := names(ss), []string{"one", "a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Load order = %v, want %v (arguments in order, directories sorted, each file once)", got, want)
	}

	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"duplicate names across files", []string{lib, filepath.Join(dir, "dup")},
			filepath.Join(dir, "dup", "x.yaml") + `:1:7: name: scenario name "a" is already used by ` + filepath.Join(lib, "a.yml") + ":1:7"},
		{"missing path", []string{filepath.Join(dir, "nope.yaml")},
			filepath.Join(dir, "nope.yaml") + ": cannot read: no such file or directory"},
		{"directory without scenarios", []string{filepath.Join(dir, "empty")},
			filepath.Join(dir, "empty") + ": the directory holds no .yaml or .yml files"},
		{"errors from every file", []string{filepath.Join(dir, "bad"), filepath.Join(dir, "nope.yaml")},
			filepath.Join(dir, "nope.yaml") + ": cannot read: no such file or directory\n" +
				filepath.Join(dir, "bad", "bad.yaml") + `:1:7: name: scenario name "BAD" must match [a-z0-9][a-z0-9-]*`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss, err := Load(tt.paths...)
			if err == nil {
				t.Fatalf("Load succeeded with %v", names(ss))
			}
			if ss != nil {
				t.Errorf("Load returned scenarios with an error: %v", names(ss))
			}
			if !IsInputError(err) {
				t.Errorf("IsInputError(%v) = false", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

// TestLoadRefusesHostileFiles names paths that are not scenario files a
// person wrote: devices and FIFOs (directly or through a symbolic link, in
// a directory or by name) and a file over MaxFileSize. Each is refused at
// once, with a message about the file as a whole and no read of it.
func TestLoadRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, "links", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := filepath.Join(dir, "big", "big.yaml")
	writeFile(t, big, "name: big\nnamespaces:\n  a: {}\n"+strings.Repeat("# padding\n", MaxFileSize/10+1))
	bigInfo, err := os.Stat(big)
	if err != nil {
		t.Fatal(err)
	}
	const notRegular = "; a scenario must be a regular file"
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"link to /dev/zero", []string{link("zero.yaml", "/dev/zero")},
			filepath.Join(dir, "links", "zero.yaml") + ": cannot read: not a regular file (it is a character device)" + notRegular},
		{"link to /dev/urandom", []string{link("random.yaml", "/dev/urandom")},
			filepath.Join(dir, "links", "random.yaml") + ": cannot read: not a regular file (it is a character device)" + notRegular},
		{"fifo", []string{fifo}, fifo + ": cannot read: not a regular file (it is a FIFO)" + notRegular},
		{"link to a fifo", []string{link("fifo-link.yaml", fifo)},
			filepath.Join(dir, "links", "fifo-link.yaml") + ": cannot read: not a regular file (it is a FIFO)" + notRegular},
		{"too large", []string{big}, fmt.Sprintf("%s: cannot read: file too large: %d bytes; the limit is 4 MiB", big, bigInfo.Size())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Load(tt.paths...)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Load still running after 10s")
			}
			if !IsInputError(err) || err.Error() != tt.want {
				t.Errorf("error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
	// A directory holding a FIFO named like a scenario: refused, not waited on.
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), fifo+": cannot read: not a regular file") {
		t.Errorf("Load(dir with a FIFO) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadContext(ctx, filepath.Join(dir, "big")); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("LoadContext after cancel = %v, want the read stopped", err)
	}
}
