package scenario

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid scenario that error cases extend: two namespaces joined
// by a veth pair.
const base = `name: t
namespaces:
  a:
    interfaces:
      eth0: {addresses: [10.0.0.1/24]}
  b:
    interfaces:
      eth0: {addresses: [10.0.0.2/24]}
links:
  - [a/eth0, b/eth0]
`

// TestParseErrors feeds one mistake of each class to Parse and asserts the
// exact report, "file:line:col: field: message", one line per problem.
func TestParseErrors(t *testing.T) {
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%d namespaces); want errors:\n%s", len(s.Namespaces), strings.Join(tt.want, "\n"))
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			if !IsInputError(err) {
				t.Errorf("IsInputError(%v) = false", err)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

// errorCases holds one mistake of each class with its exact report. The
// fuzz test seeds its corpus from these too.
var errorCases = []struct {
	name string
	yaml string
	want []string
}{
	{name: "unknown top-level key", yaml: "name: t\nnamespace:\n  a: {}\n",
		want: []string{
			"t.yaml:1:1: missing key \"namespaces\" (the network namespaces of the scenario)",
			"t.yaml:2:1: unknown key \"namespace\" (did you mean \"namespaces\"?)",
		}},
	{name: "unknown interface key, suggested", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, adress: [10.0.0.1/24]}
`,
		want: []string{
			"t.yaml:5:27: namespaces.a.interfaces.br0: unknown key \"adress\" (did you mean \"addresses\"?)",
		}},
	{name: "address listed twice", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24, 10.0.0.1/24]}
`,
		want: []string{
			"t.yaml:5:52: namespaces.a.interfaces.br0.addresses[1]: address 10.0.0.1/24 is listed twice",
		}},
	{name: "yaml syntax error", yaml: `name: t
namespaces:
  a:
    interfaces: {eth0: {}
  b: {}
`,
		want: []string{
			"t.yaml:4: YAML syntax: did not find expected ',' or '}'",
		}},
	{name: "yaml tab indentation", yaml: "name: t\nnamespaces:\n\ta: {}\n",
		want: []string{
			"t.yaml:3: YAML syntax: found character that cannot start any token",
		}},
	{name: "yaml unknown anchor", yaml: "name: t\nnamespaces:\n  a: *nowhere\n",
		want: []string{
			"t.yaml:3: YAML syntax: unknown anchor 'nowhere' referenced",
		}},
	{name: "duplicate top-level key", yaml: base + "name: u\n",
		want: []string{
			"t.yaml:11:1: duplicate key \"name\" (first at line 1:1)",
		}},
	{name: "duplicate namespace", yaml: "name: t\nnamespaces:\n  a: {}\n  a: {}\n",
		want: []string{
			"t.yaml:4:3: namespaces: duplicate key \"a\" (first at line 3:3)",
		}},
	{name: "duplicate interface key", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, up: true, up: false}
`,
		want: []string{
			"t.yaml:5:37: namespaces.a.interfaces.br0: duplicate key \"up\" (first at line 5:27)",
		}},
	{name: "expected a list", yaml: "name: t\nnamespaces:\n  a: {}\nlinks: a/eth0\n",
		want: []string{
			"t.yaml:4:8: links: expected a list, found \"a/eth0\"",
		}},
	{name: "expected a mapping", yaml: "name: t\nnamespaces:\n  a:\n    interfaces: [eth0]\n",
		want: []string{
			"t.yaml:4:17: namespaces.a.interfaces: expected a mapping, found a list",
		}},
	{name: "addresses not a list", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: 10.0.0.1/24}
`,
		want: []string{
			"t.yaml:5:38: namespaces.a.interfaces.br0.addresses: expected a list, found \"10.0.0.1/24\"",
		}},
	{name: "bad CIDR", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.300/24]}
`,
		want: []string{
			"t.yaml:5:39: namespaces.a.interfaces.br0.addresses[0]: address \"10.0.0.300/24\" is not a CIDR",
		}},
	{name: "address without prefix length", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1]}
`,
		want: []string{
			"t.yaml:5:39: namespaces.a.interfaces.br0.addresses[0]: address \"10.0.0.1\" is not a CIDR: it has no prefix length (write 10.0.0.1/32 for a single address)",
		}},
	{name: "bad MAC", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, mac: "02:00:00:00:00"}
`,
		want: []string{
			"t.yaml:5:32: namespaces.a.interfaces.br0.mac: MAC \"02:00:00:00:00\" is not an Ethernet address like 02:00:00:00:00:01",
		}},
	{name: "multicast MAC", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, mac: "01:00:5e:00:00:01"}
`,
		want: []string{
			"t.yaml:5:32: namespaces.a.interfaces.br0.mac: MAC \"01:00:5e:00:00:01\" is a multicast address; an interface needs a unicast one (first byte even, e.g. 02:...)",
		}},
	{name: "interface name too long", yaml: `name: t
namespaces:
  a:
    interfaces:
      bridge-for-tests: {type: bridge}
`,
		want: []string{
			"t.yaml:5:7: namespaces.a.interfaces: interface name \"bridge-for-tests\" is 16 characters; Linux allows at most 15 (IFNAMSIZ)",
		}},
	{name: "namespace name too long", yaml: "name: t\nnamespaces:\n  namespace-number1: {}\n",
		want: []string{
			"t.yaml:3:3: namespaces: namespace name \"namespace-number1\" is 17 characters; at most 15 are allowed",
		}},
	{name: "namespace name syntax", yaml: "name: t\nnamespaces:\n  Web: {}\n",
		want: []string{
			"t.yaml:3:3: namespaces: namespace name \"Web\" must match [a-z][a-z0-9-_]*",
		}},
	{name: "scenario name syntax", yaml: "name: My_Scenario\nnamespaces:\n  a: {}\n",
		want: []string{
			"t.yaml:1:7: name: scenario name \"My_Scenario\" must match [a-z0-9][a-z0-9-]*",
		}},
	{name: "scenario name too long", yaml: "name: a-scenario-name-that-is-far-too-long\nnamespaces:\n  a: {}\n",
		want: []string{
			"t.yaml:1:7: name: scenario name \"a-scenario-name-that-is-far-too-long\" is 36 characters; at most 32 are allowed",
		}},
	{name: "missing name and namespaces", yaml: "description: nothing else\n",
		want: []string{
			"t.yaml:1:1: missing key \"name\" (the scenario's name, [a-z0-9][a-z0-9-]*)",
			"t.yaml:1:1: missing key \"namespaces\" (the network namespaces of the scenario)",
		}},
	{name: "link to missing namespace", yaml: "name: t\nnamespaces:\n  a: {}\n  b: {}\nlinks:\n  - [a/eth0, c/eth0]\n",
		want: []string{
			"t.yaml:6:14: links[0][1]: no namespace \"c\"",
		}},
	{name: "link end not NS/IF", yaml: "name: t\nnamespaces:\n  a: {}\nlinks:\n  - [a/eth0, eth1]\n",
		want: []string{
			"t.yaml:5:14: links[0][1]: \"eth1\" is not NS/IF (a namespace and an interface, like ns1/eth0)",
		}},
	{name: "link with three ends", yaml: "name: t\nnamespaces:\n  a: {}\nlinks:\n  - [a/eth0, a/eth1, a/eth2]\n",
		want: []string{
			"t.yaml:5:5: links[0]: a link is a pair [ns/if, ns/if]; this one has 3 ends",
		}},
	{name: "veth end used twice", yaml: base + "  - [a/eth0, b/eth1]\n",
		want: []string{
			"t.yaml:11:6: links[1][0]: veth end a/eth0 is already used by the link at line 10:6",
		}},
	{name: "lo as a veth end", yaml: "name: t\nnamespaces:\n  a: {}\nlinks:\n  - [a/lo, a/eth1]\n",
		want: []string{
			"t.yaml:5:6: links[0][0]: a/lo is the loopback interface and cannot be a veth end",
		}},
	{name: "master missing", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge}
      v0: {master: br1}
links:
  - [a/v0, a/v1]
`,
		want: []string{
			"t.yaml:6:20: namespaces.a.interfaces.v0.master: no interface \"br1\" in namespace a (did you mean \"br0\"?)",
		}},
	{name: "master not a bridge", yaml: `name: t
namespaces:
  a:
    interfaces:
      v0: {master: v1}
links:
  - [a/v0, a/v1]
`,
		want: []string{
			"t.yaml:5:20: namespaces.a.interfaces.v0.master: master v1 is not a bridge (it is a veth)",
		}},
	{name: "master in another namespace", yaml: `name: t
namespaces:
  host:
    interfaces:
      br0: {type: bridge}
  a:
    interfaces:
      eth0: {master: host/br0}
links:
  - [a/eth0, host/veth0]
`,
		want: []string{
			"t.yaml:8:22: namespaces.a.interfaces.eth0.master: master must name an interface in the same namespace (a), not \"host/br0\"",
		}},
	{name: "bridge enslaved to a bridge", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge}
      br1: {type: bridge, master: br0}
`,
		want: []string{
			"t.yaml:6:35: namespaces.a.interfaces.br1.master: bridge br1 cannot be a port of another bridge",
		}},
	{name: "type missing", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {addresses: [10.0.0.1/24]}
`,
		want: []string{
			"t.yaml:5:7: namespaces.a.interfaces.br0: missing key \"type\": a/br0 is not in links, so it is not a veth end; say what it is (bridge, vxlan, macvlan or dummy)",
		}},
	{name: "unknown type", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: brigde}
`,
		want: []string{
			"t.yaml:5:19: namespaces.a.interfaces.br0.type: unknown interface type \"brigde\" (did you mean \"bridge\"?); one of veth, bridge, dummy, vxlan, macvlan, loopback",
		}},
	{name: "veth without a link", yaml: `name: t
namespaces:
  a:
    interfaces:
      v0: {type: veth}
`,
		want: []string{
			"t.yaml:5:18: namespaces.a.interfaces.v0.type: veth a/v0 has no peer: name it in links, e.g. [a/v0, other/ifname]",
		}},
	{name: "bridge in links", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge}
  b: {}
links:
  - [a/br0, b/eth0]
`,
		want: []string{
			"t.yaml:5:19: namespaces.a.interfaces.br0.type: a/br0 is a veth end in links (line 8) but its type is bridge",
		}},
	{name: "vxlan key on a bridge", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, vni: 42}
`,
		want: []string{
			"t.yaml:5:27: namespaces.a.interfaces.br0: vni applies to vxlan interfaces only; br0 is a bridge",
		}},
	{name: "vxlan without vni", yaml: `name: t
namespaces:
  a:
    interfaces:
      vx0: {type: vxlan, remote: 192.0.2.2}
`,
		want: []string{
			"t.yaml:5:7: namespaces.a.interfaces.vx0: missing key \"vni\": a vxlan interface needs its VXLAN network identifier",
		}},
	{name: "vxlan dev missing", yaml: `name: t
namespaces:
  a:
    interfaces:
      vx0: {type: vxlan, vni: 42, dev: eth0}
`,
		want: []string{
			"t.yaml:5:40: namespaces.a.interfaces.vx0.dev: no interface \"eth0\" in namespace a",
		}},
	{name: "macvlan without parent", yaml: `name: t
namespaces:
  a:
    interfaces:
      mv0: {type: macvlan, mode: bridge}
`,
		want: []string{
			"t.yaml:5:7: namespaces.a.interfaces.mv0: missing key \"parent\": a macvlan interface needs the interface it sits on",
		}},
	{name: "macvlan mode", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge}
      mv0: {type: macvlan, mode: brdige, parent: br0}
`,
		want: []string{
			"t.yaml:6:34: namespaces.a.interfaces.mv0.mode: unknown macvlan mode \"brdige\" (did you mean \"bridge\"?); one of bridge, vepa, private, passthru, source",
		}},
	{name: "loopback type on another interface", yaml: `name: t
namespaces:
  a:
    interfaces:
      lo0: {type: loopback}
`,
		want: []string{
			"t.yaml:5:19: namespaces.a.interfaces.lo0.type: type loopback is only for lo",
		}},
	{name: "lo with another type", yaml: `name: t
namespaces:
  a:
    interfaces:
      lo: {type: bridge}
`,
		want: []string{
			"t.yaml:5:18: namespaces.a.interfaces.lo.type: lo is the loopback interface; its type can only be loopback",
		}},
	{name: "lo set twice", yaml: `name: t
namespaces:
  a:
    interfaces:
      lo: {up: false}
    lo: {up: true}
`,
		want: []string{
			"t.yaml:6:5: namespaces.a.lo: lo is also set under namespaces.a.interfaces; set it in one place",
		}},
	{name: "mtu out of range", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, mtu: 64}
`,
		want: []string{
			"t.yaml:5:32: namespaces.a.interfaces.br0.mtu: 64 is out of range [68, 65535]",
		}},
	{name: "up not a boolean", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, up: "yes"}
`,
		want: []string{
			"t.yaml:5:31: namespaces.a.interfaces.br0.up: expected true or false, found \"yes\"",
		}},
	{name: "route unparsable", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24]}
    routes:
      - default via
      - 10.1.0.0/16 gw 10.0.0.2
      - 10.1.0.0/16 dev br0 metric high
`,
		want: []string{
			"t.yaml:7:9: namespaces.a.routes[0]: route \"default via\": via needs a value",
			"t.yaml:8:9: namespaces.a.routes[1]: route \"10.1.0.0/16 gw 10.0.0.2\": unknown word \"gw\"; after the destination come via GW, dev IF, src IP, metric N, table N",
			"t.yaml:9:9: namespaces.a.routes[2]: route \"10.1.0.0/16 dev br0 metric high\": metric \"high\" is not a number from 0 to 4294967295",
		}},
	{name: "route dev missing", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24]}
    routes:
      - default via 10.0.0.254 dev eth0
`,
		want: []string{
			"t.yaml:7:9: namespaces.a.routes[0]: route \"default via 10.0.0.254 dev eth0\": no interface \"eth0\" in namespace a",
		}},
	{name: "route host bits", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24]}
    routes:
      - 10.1.0.5/16 via 10.0.0.254
`,
		want: []string{
			"t.yaml:7:9: namespaces.a.routes[0]: route \"10.1.0.5/16 via 10.0.0.254\": destination 10.1.0.5/16 has host bits set (did you mean 10.1.0.0/16?)",
		}},
	{name: "route gateway off-link", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24]}
    routes:
      - default via 10.9.0.1
`,
		want: []string{
			"t.yaml:7:9: namespaces.a.routes[0]: route \"default via 10.9.0.1\": gateway 10.9.0.1 is not on a subnet of any interface that is up in namespace a (the kernel would answer \"Nexthop has invalid gateway\"); give an interface an address on its subnet, or add an on-link route to it",
		}},
	{name: "route duplicates the kernel's", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24]}
    routes:
      - 10.0.0.0/24 dev br0
`,
		want: []string{
			"t.yaml:7:9: namespaces.a.routes[0]: route \"10.0.0.0/24 dev br0\": the kernel already adds this route for address 10.0.0.1/24 on br0; remove it (or give it a metric)",
		}},
	{name: "route twice", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24]}
    routes:
      - default via 10.0.0.254
      - default via 10.0.0.253 dev br0
`,
		want: []string{
			"t.yaml:8:9: namespaces.a.routes[1]: route \"default via 10.0.0.253 dev br0\": a route to 0.0.0.0/0 with the same table and metric is already added at line 7",
		}},
	{name: "route src not local", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24]}
    routes:
      - default via 10.0.0.254 src 10.0.0.9
`,
		want: []string{
			"t.yaml:7:9: namespaces.a.routes[0]: route \"default via 10.0.0.254 src 10.0.0.9\": source 10.0.0.9 is not an address of namespace a",
		}},
	{name: "route through a down interface", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge, addresses: [10.0.0.1/24], up: false}
    routes:
      - 10.1.0.0/16 dev br0
      - default via 10.0.0.254
`,
		want: []string{
			"t.yaml:7:9: namespaces.a.routes[0]: route \"10.1.0.0/16 dev br0\": br0 is down (up: false), and the kernel adds no route through a down interface",
			"t.yaml:8:9: namespaces.a.routes[1]: route \"default via 10.0.0.254\": gateway 10.0.0.254 is not on a subnet of any interface that is up in namespace a (the kernel would answer \"Nexthop has invalid gateway\"); give an interface an address on its subnet, or add an on-link route to it",
		}},
	{name: "iptables table, policy and command", yaml: `name: t
namespaces:
  a:
    iptables:
      - -t filtre -A INPUT -j ACCEPT
      - -P FORWARD REJECT
      - -N MYCHAIN
      - -P MYCHAIN DROP
      - -D INPUT 1
      - iptables -A INPUT -j ACCEPT
`,
		want: []string{
			"t.yaml:5:9: namespaces.a.iptables[0]: iptables \"-t filtre -A INPUT -j ACCEPT\": unknown table \"filtre\" (did you mean \"filter\"?); one of filter, nat, mangle, raw, security",
			"t.yaml:6:9: namespaces.a.iptables[1]: iptables \"-P FORWARD REJECT\": -P FORWARD takes one target, ACCEPT or DROP",
			"t.yaml:8:9: namespaces.a.iptables[3]: iptables \"-P MYCHAIN DROP\": a policy is set on built-in chains only; filter has no built-in chain MYCHAIN",
			"t.yaml:9:9: namespaces.a.iptables[4]: iptables \"-D INPUT 1\": -D is not supported: a scenario builds its rule set with -A, -I, -N and -P",
			"t.yaml:10:9: namespaces.a.iptables[5]: iptables \"iptables -A INPUT -j ACCEPT\": write only the arguments, without a leading \"iptables\"",
		}},
	{name: "iptables chains", yaml: `name: t
namespaces:
  a:
    iptables:
      - -A POSTROUTING -j ACCEPT
      - -A MYCHAIN -j ACCEPT
      - -A INPUT -j MYCHAIN
      - -N MYCHAIN
      - -A INPUT -j MYCHAIN
      - -A INPUT -j ACCPET
      - -I INPUT 5 -j ACCEPT
`,
		want: []string{
			"t.yaml:5:9: namespaces.a.iptables[0]: iptables \"-A POSTROUTING -j ACCEPT\": table filter has no chain POSTROUTING; it is built into nat, mangle (add -t nat)",
			"t.yaml:6:9: namespaces.a.iptables[1]: iptables \"-A MYCHAIN -j ACCEPT\": table filter has no chain MYCHAIN; create it first with -N MYCHAIN",
			"t.yaml:7:9: namespaces.a.iptables[2]: iptables \"-A INPUT -j MYCHAIN\": target \"MYCHAIN\" is neither a known target nor a chain made earlier with -N in table filter",
			"t.yaml:10:9: namespaces.a.iptables[5]: iptables \"-A INPUT -j ACCPET\": target \"ACCPET\" is neither a known target nor a chain made earlier with -N in table filter (did you mean \"ACCEPT\"?)",
			"t.yaml:11:9: namespaces.a.iptables[6]: iptables \"-I INPUT 5 -j ACCEPT\": rule number 5 is past the end of INPUT, which has 1 rule at this point",
		}},
	{name: "iptables rule specs", yaml: `name: t
namespaces:
  a:
    iptables:
      - -A POSTROUTING -j MASQUERADE
      - -t nat -A PREROUTING -j MASQUERADE
      - -t nat -A POSTROUTING -i eth0 -j ACCEPT
      - -t nat -A PREROUTING -j DROP
      - -A INPUT -m comment --comment "unterminated -j ACCEPT
      - -A INPUT -m comment --comment "-j is fine in a comment" -j ACCEPT
`,
		want: []string{
			"t.yaml:5:9: namespaces.a.iptables[0]: iptables \"-A POSTROUTING -j MASQUERADE\": target MASQUERADE works only in the nat table (add -t nat)",
			"t.yaml:6:9: namespaces.a.iptables[1]: iptables \"-t nat -A PREROUTING -j MASQUERADE\": target MASQUERADE works only in POSTROUTING or INPUT, not in PREROUTING",
			"t.yaml:7:9: namespaces.a.iptables[2]: iptables \"-t nat -A POSTROUTING -i eth0 -j ACCEPT\": -i cannot be used in POSTROUTING: packets there have no input interface",
			"t.yaml:8:9: namespaces.a.iptables[3]: iptables \"-t nat -A PREROUTING -j DROP\": the nat table is not for filtering; iptables refuses -j DROP there (use the filter table)",
			"t.yaml:9:9: namespaces.a.iptables[4]: iptables \"-A INPUT -m comment --comment \\\"unterminated -j ACCEPT\": unterminated quote: \" at offset 30",
		}},
	{name: "neighbors", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge}
    neighbors:
      - 10.0.0.2 lladdr 02:00:00:00:00:02
      - 10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0
      - 10.0.0.2 mac 02:00:00:00:00:02 dev br0
`,
		want: []string{
			"t.yaml:7:9: namespaces.a.neighbors[0]: neighbor \"10.0.0.2 lladdr 02:00:00:00:00:02\": missing dev IF",
			"t.yaml:8:9: namespaces.a.neighbors[1]: neighbor \"10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0\": no interface \"eth0\" in namespace a",
			"t.yaml:9:9: namespaces.a.neighbors[2]: neighbor \"10.0.0.2 mac 02:00:00:00:00:02 dev br0\": unknown word \"mac\"; write IP lladdr MAC dev IF",
		}},
	{name: "sysctls", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {type: bridge}
    sysctls:
      kernel.hostname: x
      net.ipv4.ip_forward: true
      net.ipv4.conf.eth0.rp_filter: 2
      net.ipv4.conf.br0.rp_filter: 2
`,
		want: []string{
			"t.yaml:7:7: namespaces.a.sysctls: sysctl \"kernel.hostname\" is outside net.*; hopcheck sets sysctls inside network namespaces, where only net.* is per namespace",
			"t.yaml:8:28: namespaces.a.sysctls.net.ipv4.ip_forward: expected a number or a string, found the boolean true (write 1 or 0)",
			"t.yaml:9:7: namespaces.a.sysctls: sysctl net.ipv4.conf.eth0.rp_filter: no interface \"eth0\" in namespace a",
		}},
	{name: "check without kind", yaml: base + `checks:
  - name: lonely
`,
		want: []string{
			"t.yaml:12:5: checks[0]: a check needs one kind key: ping, tcp, udp, arp, route, link, iptables, sysctl",
		}},
	{name: "check with two kinds", yaml: base + `checks:
  - ping: {from: a, to: 10.0.0.2}
    arp: {in: a, ip: 10.0.0.2}
`,
		want: []string{
			"t.yaml:13:5: checks[0]: a check has one kind; this one has both ping (line 12) and arp",
		}},
	{name: "check kind typo", yaml: base + `checks:
  - pign: {from: a, to: 10.0.0.2}
`,
		want: []string{
			"t.yaml:12:5: checks[0]: unknown key \"pign\" (did you mean \"ping\"?)",
		}},
	{name: "check name in both places", yaml: base + `checks:
  - ping: {from: a, to: 10.0.0.2, name: inside}
    name: beside
`,
		want: []string{
			"t.yaml:12:35: checks[0].ping: name is set both beside ping (line 13) and inside it; keep one",
		}},
	{name: "cause rules", yaml: base + `checks:
  - ping: {from: a, to: 10.0.0.9, cause: no-route}
  - arp: {in: a, ip: 10.0.0.2}
    expect: fail
    cause: arp-failed
  - ping: {from: a, to: 10.0.0.9, expect: fail, cause: no-rout}
  - ping: {from: a, to: 10.0.0.9, expect: fail, cause: no-listener}
`,
		want: []string{
			"t.yaml:12:35: checks[0].ping.cause: cause needs expect: fail (it names why the probe must fail)",
			"t.yaml:15:5: checks[1].cause: cause applies to ping, tcp and udp checks only",
			"t.yaml:16:56: checks[2].ping.cause: unknown cause \"no-rout\" (did you mean \"no-route\"?); one of no-route, no-return-route, forwarding-disabled, netfilter-drop, link-down, not-bridged, arp-failed, rp-filter, no-listener, address-missing, loopback-down, wrong-mac, vxlan-mismatch, mtu, neighbor-table-full, unknown",
			"t.yaml:17:56: checks[3].ping.cause: cause no-listener applies to tcp and udp checks; a ping has no listener",
		}},
	{name: "ping limits", yaml: base + `checks:
  - ping: {from: a, to: 10.0.0.2, count: 1000}
  - ping: {from: a, to: 10.0.0.2, timeout: 1m}
  - ping: {from: a, to: 10.0.0.2, timeout: 5}
  - ping: {from: a, to: 10.0.0.2, max_loss: 20}
  - ping: {from: a, to: 10.0.0.2, max_loss: 120%}
`,
		want: []string{
			"t.yaml:12:42: checks[0].ping.count: 1000 is out of range [1, 100]",
			"t.yaml:13:44: checks[1].ping.timeout: timeout 1m0s is longer than the limit of 30s",
			"t.yaml:14:44: checks[2].ping.timeout: timeout \"5\" is not a duration like 1s or 500ms",
			"t.yaml:15:45: checks[3].ping.max_loss: max_loss \"20\" is not a percentage from 0% to 100%",
			"t.yaml:16:45: checks[4].ping.max_loss: max_loss \"120%\" is not a percentage from 0% to 100%",
		}},
	{name: "ping targets", yaml: base + `checks:
  - ping: {from: a, to: 10.0.0.0/24}
  - ping: {from: c, to: 10.0.0.2}
  - ping: {from: a, to: b/lo}
  - ping: {from: a, to: b/eth9}
  - ping: {from: a, to: www.example.com}
`,
		want: []string{
			"t.yaml:12:25: checks[0].ping.to: to \"10.0.0.0/24\" is a prefix; write one address (10.0.0.0) or NS/IF",
			"t.yaml:13:18: checks[1].ping.from: no namespace \"c\"",
			"t.yaml:14:25: checks[2].ping.to: b/lo has no address in the scenario to send to (an IPv4 address, or an IPv6 one that is not link-local, outside loopback 127.0.0.0/8 and ::1); give it one, or write the address",
			"t.yaml:15:25: checks[3].ping.to: no interface \"eth9\" in namespace b (did you mean \"eth0\"?)",
			"t.yaml:16:25: checks[4].ping.to: to \"www.example.com\" is neither an IP address nor NS/IF",
		}},
	{name: "tcp and udp", yaml: base + `checks:
  - tcp: {from: a, to: 10.0.0.2}
  - udp: {from: a, to: "10.0.0.2:0"}
  - tcp: {from: a, to: "10.0.0.2:80", listen: b}
  - tcp: {from: a, to: "10.0.0.2:80", listen: "c:80"}
  - tcp: {from: a, to: "10.0.0.2:80", payload: hello}
  - udp: {from: a, to: "10.0.0.2:53", listen: "b:53", reply: pong}
  - udp: {from: a, to: "10.0.0.2:53", payload: ""}
`,
		want: []string{
			"t.yaml:12:24: checks[0].tcp.to: to \"10.0.0.2\" is not IP:PORT (198.51.100.2:8080, [2001:db8::1]:80)",
			"t.yaml:13:24: checks[1].udp.to: to \"10.0.0.2:0\": port 0 cannot be connected to",
			"t.yaml:14:47: checks[2].tcp.listen: listen \"b\" is not NS:PORT (ns1:80)",
			"t.yaml:15:47: checks[3].tcp.listen: no namespace \"c\"",
			"t.yaml:16:48: checks[4].tcp.payload: payload is for udp checks; a tcp check without listen passes on a completed handshake",
			"t.yaml:17:62: checks[5].udp.reply: reply is for a real service's answer; with listen, hopcheck's listener answers",
			"t.yaml:18:48: checks[6].udp.payload: payload is empty",
		}},
	{name: "arp fields", yaml: base + `checks:
  - arp: {in: a, ip: 10.0.0.2, mac: "02:00:00:00:00", state: reachble}
  - arp: {in: a, ip: 10.0.0.2, mac: b/eth1, dev: eth1}
  - arp: {in: a}
`,
		want: []string{
			"t.yaml:12:37: checks[0].arp.mac: MAC \"02:00:00:00:00\" is not an Ethernet address like 02:00:00:00:00:01 (or NS/IF for that interface's MAC)",
			"t.yaml:12:62: checks[0].arp.state: unknown state \"reachble\" (did you mean \"reachable\"?); one of reachable, stale, permanent, any",
			"t.yaml:13:37: checks[1].arp.mac: no interface \"eth1\" in namespace b (did you mean \"eth0\"?)",
			"t.yaml:13:50: checks[1].arp.dev: no interface \"eth1\" in namespace a (did you mean \"eth0\"?)",
			"t.yaml:14:10: checks[2].arp: missing key \"ip\"",
		}},
	{name: "route, link, iptables and sysctl checks", yaml: base + `checks:
  - route: {in: a, to: 10.0.0.2, dev: eth1}
  - link: {in: a, name: eth1}
  - link: {in: a, name: eth0, master: br0, mtu: 20}
  - iptables: {in: a, chain: POSTROUTING, rule: "-j ACCEPT"}
  - iptables: {in: a, table: nat, chain: POSTROUTING, rule: "-j MASQUERADE", packets: "> zero"}
  - sysctl: {in: a, key: vm.swappiness, value: 1}
`,
		want: []string{
			"t.yaml:12:39: checks[0].route.dev: no interface \"eth1\" in namespace a (did you mean \"eth0\"?)",
			"t.yaml:13:25: checks[1].link.name: no interface \"eth1\" in namespace a (did you mean \"eth0\"?)",
			"t.yaml:14:39: checks[2].link.master: no interface \"br0\" in namespace a",
			"t.yaml:14:49: checks[2].link.mtu: 20 is out of range [68, 65535]",
			"t.yaml:15:30: checks[3].iptables.chain: table filter of namespace a has no chain POSTROUTING (neither built in nor made with -N)",
			"t.yaml:16:87: checks[4].iptables.packets: packets \"> zero\" is not a condition like \"0\", \">0\" or \">=3\"",
			"t.yaml:17:26: checks[5].sysctl.key: sysctl \"vm.swappiness\" is outside net.*; hopcheck sets sysctls inside network namespaces, where only net.* is per namespace",
		}},
	{name: "trace assertions", yaml: base + `checks:
  - ping: {from: a, to: 10.0.0.2, path: [a/eth0, b/eth1], snat: 10.0.0.300}
  - route: {in: a, to: 10.0.0.2, dnat: 10.0.0.3}
`,
		want: []string{
			"t.yaml:12:50: checks[0].ping.path[1]: no interface \"eth1\" in namespace b (did you mean \"eth0\"?)",
			"t.yaml:12:65: checks[0].ping.snat: snat \"10.0.0.300\" is not an IP address",
			"t.yaml:13:34: checks[1].route.dnat: dnat is a trace assertion; it applies to ping, tcp and udp checks only",
		}},
	{name: "expect typo", yaml: base + `checks:
  - ping: {from: a, to: 10.0.0.2}
    expect: failure
`,
		want: []string{
			"t.yaml:13:13: checks[0].expect: expect must be success or fail, not \"failure\" (did you mean \"fail\"?)",
		}},
	{name: "two documents", yaml: base + "---\nname: u\n",
		want: []string{
			"t.yaml:11:1: a scenario file holds one YAML document; a second one starts here (remove the \"---\" separator)",
		}},
	{name: "empty file", yaml: "# nothing\n",
		want: []string{
			"t.yaml: the file holds no YAML document",
		}},
	{name: "empty document", yaml: "--- # nothing here\n",
		want: []string{
			"t.yaml: the YAML document is empty",
		}},
	{name: "not a mapping", yaml: "- name: t\n",
		want: []string{
			"t.yaml:1:1: expected a mapping, found a list",
		}},
	{name: "merge key of the wrong kind", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {<<: [1], type: bridge}
`,
		want: []string{
			"t.yaml:5:18: namespaces.a.interfaces.br0: a merge key (<<) takes a mapping or a list of mappings, found \"1\"",
		}},
	{name: "merge key with a scalar or null", yaml: `name: t
namespaces:
  a:
    interfaces:
      br0: {<<: 1, type: bridge}
      br1: {<<: , type: bridge}
`,
		want: []string{
			"t.yaml:5:17: namespaces.a.interfaces.br0: a merge key (<<) takes a mapping or a list of mappings, found \"1\"",
			"t.yaml:6:17: namespaces.a.interfaces.br1: a merge key (<<) takes a mapping or a list of mappings, found nothing",
		}},
	{name: "iptables --modprobe anywhere", yaml: `name: t
namespaces:
  a:
    iptables:
      - -A INPUT --modprobe=/tmp/x -j ACCEPT
      - -A INPUT -j ACCEPT --modprobe /tmp/x
      - -A INPUT -M /tmp/x -j ACCEPT
      - -A INPUT -vM/tmp/x -j ACCEPT
      - -A INPUT --modp=/tmp/x -j ACCEPT
      - -t nat --modprobe /tmp/x -A POSTROUTING -j MASQUERADE
      - -A INPUT -m comment --comment --modprobe -j ACCEPT
      - -A INPUT -m statistic --mode random --probability 0.5 -j ACCEPT
`,
		want: []string{
			"t.yaml:5:9: namespaces.a.iptables[0]: iptables \"-A INPUT --modprobe=/tmp/x -j ACCEPT\": --modprobe=/tmp/x is not allowed: it makes iptables run a program of your choice as root to load modules",
			"t.yaml:6:9: namespaces.a.iptables[1]: iptables \"-A INPUT -j ACCEPT --modprobe /tmp/x\": --modprobe is not allowed: it makes iptables run a program of your choice as root to load modules",
			"t.yaml:7:9: namespaces.a.iptables[2]: iptables \"-A INPUT -M /tmp/x -j ACCEPT\": -M is not allowed: it makes iptables run a program of your choice as root to load modules",
			"t.yaml:8:9: namespaces.a.iptables[3]: iptables \"-A INPUT -vM/tmp/x -j ACCEPT\": -vM/tmp/x is not allowed: it makes iptables run a program of your choice as root to load modules",
			"t.yaml:9:9: namespaces.a.iptables[4]: iptables \"-A INPUT --modp=/tmp/x -j ACCEPT\": --modp=/tmp/x is not allowed: it makes iptables run a program of your choice as root to load modules",
			"t.yaml:10:9: namespaces.a.iptables[5]: iptables \"-t nat --modprobe /tmp/x -A POSTROUTING -j MASQUERADE\": --modprobe is not allowed: it makes iptables run a program of your choice as root to load modules",
		}},
	{name: "sysctl value with a newline", yaml: `name: t
namespaces:
  a:
    sysctls:
      net.ipv4.ip_forward: "1\nnet.ipv4.conf.all.forwarding=1"
      net.ipv4.tcp_rmem: "4096\t87380 6291456"
`,
		want: []string{
			"t.yaml:5:28: namespaces.a.sysctls.net.ipv4.ip_forward: sysctl net.ipv4.ip_forward: the value \"1\\nnet.ipv4.conf.all.forwarding=1\" holds a control character (U+000A); write it on one line, words separated by spaces",
		}},
	{name: "to NS/lo picks only the scenario's addresses", yaml: `name: t
namespaces:
  a:
    interfaces:
      eth0: {type: dummy, addresses: [10.0.0.1/24]}
  b:
    lo: {addresses: [127.0.0.2/8, "::1/128"]}
checks:
  - ping: {from: a, to: b/lo}
`,
		want: []string{
			"t.yaml:9:25: checks[0].ping.to: b/lo has no address in the scenario to send to (an IPv4 address, or an IPv6 one that is not link-local, outside loopback 127.0.0.0/8 and ::1); give it one, or write the address",
		}},
	{name: "snat and dnat of the other family", yaml: base + `checks:
  - ping: {from: a, to: 10.0.0.2, snat: "2001:db8::1"}
  - ping: {from: a, to: b/eth0, dnat: "2001:db8::2"}
  - tcp: {from: a, to: "[2001:db8::2]:80", listen: b:80, snat: 10.0.0.1}
`,
		want: []string{
			"t.yaml:12:41: checks[0].ping.snat: snat 2001:db8::1 is IPv6 but the probe goes to 10.0.0.2, an IPv4 address; NAT never changes the family, so this can never pass",
			"t.yaml:13:39: checks[1].ping.dnat: dnat 2001:db8::2 is IPv6 but the probe goes to 10.0.0.2, an IPv4 address; NAT never changes the family, so this can never pass",
			"t.yaml:14:64: checks[2].tcp.snat: snat 10.0.0.1 is IPv4 but the probe goes to 2001:db8::2, an IPv6 address; NAT never changes the family, so this can never pass",
		}},
	{name: "errors in file order", yaml: `checks:
  - ping: {from: z, to: 10.0.0.2}
name: BAD
namespaces:
  a: {}
`,
		want: []string{
			"t.yaml:2:18: checks[0].ping.from: no namespace \"z\"",
			"t.yaml:3:7: name: scenario name \"BAD\" must match [a-z0-9][a-z0-9-]*",
		}},
}
