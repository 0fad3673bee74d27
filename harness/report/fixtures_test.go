package report

// Runs shaped like what the runner reports for the seed scenarios, used by
// the golden tests of every renderer.

func details(kv ...string) Details {
	var d Details
	for i := 0; i+1 < len(kv); i += 2 {
		d.Set(kv[i], kv[i+1])
	}
	return d
}

func bridgeScenario() Scenario {
	return Scenario{
		Name:        "bridge",
		File:        "scenarios/bridge.yaml",
		Description: "three containers on a bridge",
		Passed:      true,
		DurationMS:  84.2,
		Checks: []Check{
			{
				Name: "ping ns1 -> 10.0.0.3", Kind: "ping", Expect: "success", Passed: true, DurationMS: 1.3,
				Summary: "1/1 replies, rtt 0.06ms",
				Details: details("sent", "1", "received", "1", "rtt_ms", "0.06"),
				Hops: []Hop{
					{NS: "ns1", If: "eth0", Dir: "egress", TUS: 0, Src: "10.0.0.2", Dst: "10.0.0.3", Proto: "icmp", Leg: LegRequest},
					{NS: "host", If: "veth1", Dir: "ingress", TUS: 4, Src: "10.0.0.2", Dst: "10.0.0.3", Proto: "icmp", Leg: LegRequest},
					{NS: "host", If: "veth3", Dir: "egress", TUS: 9, Src: "10.0.0.2", Dst: "10.0.0.3", Proto: "icmp", Leg: LegRequest},
					{NS: "ns3", If: "eth0", Dir: "ingress", TUS: 12, Src: "10.0.0.2", Dst: "10.0.0.3", Proto: "icmp", Leg: LegRequest},
					{NS: "ns3", If: "eth0", Dir: "egress", TUS: 31, Src: "10.0.0.3", Dst: "10.0.0.2", Proto: "icmp", Leg: LegReply},
					{NS: "host", If: "veth3", Dir: "ingress", TUS: 35, Src: "10.0.0.3", Dst: "10.0.0.2", Proto: "icmp", Leg: LegReply},
					{NS: "host", If: "veth1", Dir: "egress", TUS: 40, Src: "10.0.0.3", Dst: "10.0.0.2", Proto: "icmp", Leg: LegReply},
					{NS: "ns1", If: "eth0", Dir: "ingress", TUS: 44, Src: "10.0.0.3", Dst: "10.0.0.2", Proto: "icmp", Leg: LegReply},
				},
				ARP: []string{"who-has 10.0.0.3 tell 10.0.0.2 at ns1/eth0: 02:00:0a:00:00:03"},
			},
			{
				Name: "tcp ns2 -> 10.0.0.3:80", Kind: "tcp", Expect: "success", Passed: true, DurationMS: 2.1,
				Summary: "connected, listener saw 10.0.0.2:41000",
				Details: details("peer", "10.0.0.2:41000", "connect_ms", "0.21"),
			},
			{
				Name: "arp ns1 10.0.0.3", Kind: "arp", Expect: "success", Passed: true, DurationMS: 0.2,
				Summary: "02:00:0a:00:00:03 REACHABLE",
				Details: details("lladdr", "02:00:0a:00:00:03", "state", "REACHABLE"),
			},
		},
	}
}

func vethPairScenario() Scenario {
	return Scenario{
		Name:       "veth-pair",
		File:       "scenarios/veth-pair.yaml",
		Passed:     true,
		DurationMS: 1210.5,
		Checks: []Check{
			{
				Name: "ping a -> 10.0.1.3", Kind: "ping", Expect: "success", Passed: true, DurationMS: 0.9,
				Summary: "1/1 replies, rtt 0.04ms",
				Details: details("sent", "1", "received", "1", "rtt_ms", "0.04"),
			},
			{
				Name: "ping host -> 10.0.1.2", Kind: "ping", Expect: "fail", Cause: "no-route", Passed: true, DurationMS: 1001,
				Summary: "0/1 replies",
				Details: details("sent", "1", "received", "0"),
				Diagnosis: &Diagnosis{
					Cause: "no-route", NS: "host",
					Summary:  "host has no route to 10.0.1.2",
					Evidence: []string{"host: ip route get 10.0.1.2: Network is unreachable"},
				},
			},
		},
	}
}

func allPassRun() Run {
	return Run{
		Passed:     true,
		Scenarios:  []Scenario{bridgeScenario(), vethPairScenario()},
		DurationMS: 1302.7,
		Tracing:    Tracing{Enabled: true, Mode: "tcx"},
	}
}

// failedRun has a ping whose reply a FORWARD policy drops after SNAT: hops
// on both legs, a translation, the drop and the diagnosis.
func failedRun() Run {
	nat := Scenario{
		Name:       "nat-egress",
		File:       "scenarios/nat-egress.yaml",
		Passed:     false,
		DurationMS: 1033.4,
		LostEvents: 3,
		Checks: []Check{
			{
				Name: "ping ns1 -> 10.0.0.1", Kind: "ping", Expect: "success", Passed: true, DurationMS: 0.8,
				Summary: "1/1 replies, rtt 0.05ms",
				Details: details("sent", "1", "received", "1", "rtt_ms", "0.05"),
			},
			{
				Name: "ping ns1 -> 203.0.113.8", Kind: "ping", Expect: "success", Passed: false, DurationMS: 1000.6,
				Error:   "no reply from 203.0.113.8 within 1s",
				Summary: "0/1 replies",
				Details: details("sent", "1", "received", "0"),
				Hops: []Hop{
					{NS: "ns1", If: "veth_1", Dir: "egress", TUS: 0, Src: "10.0.0.2", Dst: "203.0.113.8", Proto: "icmp", Leg: LegRequest},
					{NS: "host", If: "veth_1h", Dir: "ingress", TUS: 6, Src: "10.0.0.2", Dst: "203.0.113.8", Proto: "icmp", Leg: LegRequest},
					{NS: "host", If: "eth0", Dir: "egress", TUS: 27, Src: "198.51.100.2", Dst: "203.0.113.8", Proto: "icmp", Leg: LegRequest},
					{NS: "internet", If: "eth0", Dir: "ingress", TUS: 31, Src: "198.51.100.2", Dst: "203.0.113.8", Proto: "icmp", Leg: LegRequest},
					{NS: "internet", If: "eth0", Dir: "egress", TUS: 48, Src: "203.0.113.8", Dst: "198.51.100.2", Proto: "icmp", Leg: LegReply},
					{NS: "host", If: "eth0", Dir: "ingress", TUS: 1052, Src: "203.0.113.8", Dst: "198.51.100.2", Proto: "icmp", Leg: LegReply},
				},
				Drop:         &Drop{NS: "host", Reason: "NETFILTER_DROP", Location: "nf_hook_slow"},
				Translations: []string{"SNAT 10.0.0.2 -> 198.51.100.2 at host/eth0"},
				ARP:          []string{"who-has 198.51.100.1 tell 198.51.100.2 at host/eth0: 02:00:c6:33:64:01"},
				Diagnosis: &Diagnosis{
					Cause: "netfilter-drop", NS: "host", If: "eth0",
					Summary: "the reply was dropped by the FORWARD chain's policy DROP in the filter table",
					Evidence: []string{
						"host: filter FORWARD policy DROP: counter +1 packet during the probe",
						"host: no rule accepts ESTABLISHED,RELATED in filter FORWARD",
						"kernel: NETFILTER_DROP at nf_hook_slow after host/eth0 ingress",
					},
					Fix: "iptables -t filter -I FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
				},
			},
			{
				Name: "udp ns1 -> 203.0.113.8:53", Kind: "udp", Expect: "fail", Cause: "netfilter-drop", Passed: false, DurationMS: 12.9,
				Error:   "expected the probe to fail with cause netfilter-drop, but it succeeded",
				Summary: "reply received, listener saw 198.51.100.2:40000",
				Details: details("peer", "198.51.100.2:40000"),
			},
		},
	}
	return Run{
		Passed:     false,
		Scenarios:  []Scenario{bridgeScenario(), nat},
		DurationMS: 1121.9,
		Tracing:    Tracing{Enabled: true, Mode: "clsact"},
		LostEvents: 3,
		Shard:      "2/3",
	}
}

// buildErrorRun has a scenario whose iptables rule the kernel rejected: it
// never ran a check.
func buildErrorRun() Run {
	return Run{
		Passed: false,
		Scenarios: []Scenario{
			{
				Name:       "dnat-ingress",
				File:       "scenarios/dnat-ingress.yaml",
				Passed:     false,
				DurationMS: 41,
				BuildError: true, Error: "scenarios/dnat-ingress.yaml:22:9: namespaces.host.iptables[1]: iptables rejected the rule: exit status 2:\n" +
					"iptables v1.8.10 (nf_tables): unknown option \"--to-destinaton\"\n" +
					"Try `iptables -h' or 'iptables --help' for more information.",
			},
			vethPairScenario(),
		},
		DurationMS: 1260.2,
		Tracing:    Tracing{Enabled: true, Mode: "tcx"},
	}
}

// invalidFileRun met an invalid scenario file among valid ones: the file
// is reported with its problems, the valid scenario ran.
func invalidFileRun() Run {
	return Run{
		Passed: false,
		Scenarios: []Scenario{
			{
				Name: "scenarios/typo.yaml", File: "scenarios/typo.yaml", InputError: true,
				Error: "scenarios/typo.yaml:6:14: namespaces.a.interfaces.eth0: unknown key \"adress\" (did you mean \"addresses\"?)\n" +
					"scenarios/typo.yaml:9:6: links[0][1]: no namespace \"c\" (did you mean \"b\"?)",
			},
			vethPairScenario(),
		},
		DurationMS: 210.5,
		Tracing:    Tracing{Enabled: true, Mode: "tcx"},
	}
}

// tracingOffRun ran without BTF: no hops, a trace note, and a diagnosis
// from namespace state alone.
func tracingOffRun() Run {
	return Run{
		Passed: false,
		Scenarios: []Scenario{
			{
				Name:       "single-container",
				File:       "scenarios/single-container.yaml",
				Passed:     false,
				DurationMS: 1015,
				Checks: []Check{
					{
						Name: "ping c1 -> 10.200.0.1", Kind: "ping", Expect: "success", Passed: false, DurationMS: 1000.2,
						Error:     "no reply from 10.200.0.1 within 1s",
						Summary:   "0/1 replies",
						Details:   details("sent", "1", "received", "0"),
						TraceNote: "tracing off: no BTF (/sys/kernel/btf/vmlinux is missing)",
						Diagnosis: &Diagnosis{
							Cause: "no-route", NS: "c1",
							Summary:       "c1 has no route to 10.200.0.1",
							Evidence:      []string{"c1: ip route get 10.200.0.1: Network is unreachable", "c1: routes: 10.0.0.0/24 dev eth0"},
							Fix:           "ip netns exec hc1a2b3c-c1 ip route add default via 10.0.0.1",
							FromStateOnly: true,
						},
					},
					{
						Name: "link host veth-c1", Kind: "link", Expect: "success", Passed: true, DurationMS: 0.1,
						Summary: "up, carrier, mtu 1500",
					},
				},
			},
		},
		DurationMS: 1020,
		Tracing:    Tracing{Reason: "no BTF (/sys/kernel/btf/vmlinux is missing)"},
	}
}
