package report

// Run is the result of one `hopcheck run`: every scenario it ran, in the
// order the runner reports them.
type Run struct {
	// Passed is true when every scenario passed.
	Passed    bool       `json:"passed"`
	Scenarios []Scenario `json:"scenarios"`
	// DurationMS is the wall time of the whole run, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	Tracing    Tracing `json:"tracing"`
	// LostEvents counts trace events the kernel could not hand over (ring
	// buffer full) over the whole run. Hops may be missing when it is not 0.
	LostEvents uint64 `json:"lost_events"`
	// CaptureLost counts frames missing from the --pcap files (see
	// Scenario.CaptureLost).
	CaptureLost uint64 `json:"capture_lost,omitempty"`
	// Shard is the slice of the scenarios this run covered ("1/3"), empty
	// when it ran them all.
	Shard string `json:"shard,omitempty"`
}

// Tracing says whether probes were traced and, when they were not, why.
type Tracing struct {
	Enabled bool `json:"enabled"`
	// Mode is how tc programs were attached: "tcx" or "clsact"; empty when
	// tracing was off.
	Mode string `json:"mode"`
	// Reason says why tracing was off ("no BTF", "--trace off").
	Reason string `json:"reason,omitempty"`
}

// Scenario is the result of one scenario file.
type Scenario struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	Description string `json:"description,omitempty"`
	// Passed is true when the scenario built, every check passed and
	// teardown succeeded.
	Passed     bool    `json:"passed"`
	DurationMS float64 `json:"duration_ms"`
	// Error is what went wrong outside the checks: a build error (see
	// BuildError), an interruption, or a teardown error.
	Error string `json:"error,omitempty"`
	// BuildError is true when the topology could not be built, so no check
	// ran (exit code 2).
	BuildError bool `json:"build_error,omitempty"`
	// InputError is true when the scenario file is invalid (Error holds
	// every problem as file:line:col: field: message), so it was neither
	// built nor checked (exit code 2). Name is then the file's path.
	InputError bool    `json:"input_error,omitempty"`
	Checks     []Check `json:"checks"`
	// LostEvents counts trace events lost while this scenario ran.
	LostEvents uint64 `json:"lost_events"`
	// CaptureLost counts frames missing from the scenario's --pcap file
	// because the kernel's queue for hopcheck was full.
	CaptureLost uint64 `json:"capture_lost,omitempty"`
}

// Check is the result of one check, with its probe's trace and, when a probe
// failed, the diagnosis.
type Check struct {
	// Name is the check as a person reads it ("ping ns1 -> 10.0.0.3").
	Name string `json:"name"`
	// Kind is the check's YAML key: ping, tcp, udp, arp, route, link,
	// iptables, sysctl.
	Kind string `json:"kind"`
	// Expect is "success" or "fail", as the scenario states it.
	Expect string `json:"expect"`
	// Cause is the diagnosis code an `expect: fail` check requires.
	Cause      string  `json:"cause,omitempty"`
	Passed     bool    `json:"passed"`
	DurationMS float64 `json:"duration_ms"`
	// Error says why the check failed; empty when it passed.
	Error string `json:"error"`
	// Summary is the check's key figures in a few words ("1/1 replies,
	// rtt 0.06ms"), shown on the check's line in the text report.
	Summary string `json:"summary,omitempty"`
	// Details are the check's measurements by name, in the order the check
	// produced them.
	Details Details `json:"details"`
	// Hops are where the probe was seen: the request's hops, then the
	// reply's, each with Leg set.
	Hops []Hop `json:"hops,omitempty"`
	// Drop is where the kernel dropped the probe, if it did.
	Drop *Drop `json:"drop,omitempty"`
	// Translations name each address change seen between hops
	// ("SNAT 10.0.0.2 -> 198.51.100.2 at host/eth0").
	Translations []string `json:"translations,omitempty"`
	// ARP lists the neighbour resolutions the probe waited for ("who-has
	// 10.0.0.1 tell 10.0.0.2 at ns1/veth_1: no reply").
	ARP       []string   `json:"arp,omitempty"`
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`
	// TraceNote says why the check has no trace ("tracing off: no BTF"),
	// or why its trace is incomplete.
	TraceNote string `json:"trace_note,omitempty"`
	// TraceIncomplete is true when the probe was traced but its trace
	// could not be completed (events lost, the tracer behind). That is a
	// tracing problem, not a verdict on the network: the check stands on
	// what its probe saw, and its trace assertions were not judged.
	TraceIncomplete bool `json:"trace_incomplete,omitempty"`
}

// Leg values of Hop: which way the probe was going.
const (
	LegRequest = "request"
	LegReply   = "reply"
)

// Hop is one sighting of a probe packet on an interface.
type Hop struct {
	// NS is the scenario's name for the namespace; If is the interface name
	// inside it.
	NS string `json:"ns"`
	If string `json:"if"`
	// Dir is "ingress" or "egress".
	Dir string `json:"dir"`
	// TUS is the time since the probe's first hop, in microseconds.
	TUS int64 `json:"t_us"`
	// Src and Dst are the addresses as seen at this hop, with the port for
	// tcp and udp ("10.0.0.2:40000").
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Proto string `json:"proto"`
	// Leg is LegRequest or LegReply.
	Leg string `json:"leg"`
}

// Drop is where and why the kernel freed a probe packet as dropped.
type Drop struct {
	NS string `json:"ns"`
	// If is empty when the kernel dropped the packet with no device.
	If string `json:"if,omitempty"`
	// Reason is the kernel's drop reason without its SKB_DROP_REASON_
	// prefix ("NETFILTER_DROP").
	Reason string `json:"reason"`
	// Location is where the kernel freed the packet, function and offset
	// ("nf_hook_slow+0x9c").
	Location string `json:"location,omitempty"`
}

// Diagnosis is why a probe failed: one cause code, where, and what to do.
type Diagnosis struct {
	// Cause is a stable code ("no-route", "netfilter-drop", ...).
	Cause string `json:"cause"`
	NS    string `json:"ns"`
	If    string `json:"if,omitempty"`
	// Summary is one sentence a person understands.
	Summary string `json:"summary"`
	// Evidence are the facts the diagnosis rests on, one per entry.
	Evidence []string `json:"evidence,omitempty"`
	// Fix is a command that would repair it, when one is known.
	Fix string `json:"fix,omitempty"`
	// FromStateOnly is true when there was no trace and the diagnosis rests
	// on the namespaces' state alone.
	FromStateOnly bool `json:"from_state_only"`
}
