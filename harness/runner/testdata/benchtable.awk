# benchtable.awk turns the output of `make bench` (go test -bench for
# ./harness/runner/ and ./trace/) into the tables of the README: the
# bridge benchmark per container count, the tracer's overhead, and every
# goal of issues 2 and 3 with its measured figure and whether it is met.
#
#   awk -f harness/runner/testdata/benchtable.awk bench-output.txt
#
# A benchmark line is: name-GOMAXPROCS, iterations, then value/unit pairs.

/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name) # the GOMAXPROCS suffix
	for (i = 3; i + 1 <= NF; i += 2)
		m[name, $(i + 1)] = $i
	seen[name] = 1
}

# v returns the metric unit of benchmark name, or "" when not measured.
function v(name, unit) { return ((name, unit) in m) ? m[name, unit] : "" }

function fmtv(x, f) { return x == "" ? "-" : sprintf(f, x) }

# goal prints one goal row; cmp is "<", "<=", ">=" or "==".
function goal(label, x, f, unit, cmp, want,   ok, verdict) {
	if (x == "") {
		verdict = "not measured"
	} else {
		ok = (cmp == "<" && x + 0 < want) || (cmp == "<=" && x + 0 <= want) ||
		     (cmp == ">=" && x + 0 >= want) || (cmp == "==" && x + 0 == want)
		verdict = ok ? "met" : "MISSED"
	}
	printf "  %-46s %12s %-6s %2s %-8s %s\n", label, fmtv(x, f), unit, cmp, want, verdict
}

END {
	br = "BenchmarkBridge/n="
	print ""
	print "Bridge scenario, build + one ping per container + teardown (ms per container):"
	print "  (hopcheck and traced: runner.Run in-process; cli: bin/hopcheck run in a child, --trace off and on)"
	printf "  %5s %8s %9s %8s %8s %8s %8s %7s %10s %10s\n", "N", "shell", "hopcheck", "x-faster", "traced", "x-faster", "cli", "cli MB", "cli-traced", "traced MB"
	split("10 100 500", sizes, " ")
	for (i = 1; i <= 3; i++) {
		n = sizes[i]
		b = br n "/"
		printf "  %5d %8s %9s %8s %8s %8s %8s %7s %10s %10s\n", n,
			fmtv(v(b "shell", "ms/container"), "%.1f"),
			fmtv(v(b "hopcheck", "ms/container"), "%.2f"),
			fmtv(v(b "hopcheck", "x-faster"), "%.1f"),
			fmtv(v(b "hopcheck-traced", "ms/container"), "%.2f"),
			fmtv(v(b "hopcheck-traced", "x-faster"), "%.1f"),
			fmtv(v(b "cli", "ms/container"), "%.2f"),
			fmtv(v(b "cli", "MB-maxrss"), "%.0f"),
			fmtv(v(b "cli-traced", "ms/container"), "%.2f"),
			fmtv(v(b "cli-traced", "MB-maxrss"), "%.0f")
	}
	lib = "BenchmarkLibrary/all"
	seed = "BenchmarkLibrary/seed"
	printf "  scenario library, hopcheck run scenarios/ (%s scenarios): %s ms, %s MB peak RSS, %s lost events\n",
		fmtv(v(lib, "scenarios"), "%d"), fmtv(v(lib, "ms/run"), "%.0f"),
		fmtv(v(lib, "MB-maxrss"), "%.0f"), fmtv(v(lib, "lost-events"), "%d")
	printf "  seed scenarios only, hopcheck run scenarios/*.yaml (%s scenarios): %s ms, %s MB peak RSS, %s lost events\n",
		fmtv(v(seed, "scenarios"), "%d"), fmtv(v(seed, "ms/run"), "%.0f"),
		fmtv(v(seed, "MB-maxrss"), "%.0f"), fmtv(v(seed, "lost-events"), "%d")

	inv = "BenchmarkTCInvocation/"
	print ""
	print "Tracer overhead:"
	printf "  tc program per invocation: %s ns paced (reader idle), %s ns burst, %s ns non-probe; empty program on the same hooks: %s / %s / %s ns\n",
		fmtv(v(inv "paced", "ns/invocation"), "%.0f"), fmtv(v(inv "burst", "ns/invocation"), "%.0f"),
		fmtv(v(inv "non-probe", "ns/invocation"), "%.0f"),
		fmtv(v(inv "paced", "baseline-ns/invocation"), "%.0f"), fmtv(v(inv "burst", "baseline-ns/invocation"), "%.0f"),
		fmtv(v(inv "non-probe", "baseline-ns/invocation"), "%.0f")
	tp = "BenchmarkTCPThroughput"
	printf "  TCP over veth: %s MB/s untraced, %s MB/s traced (%s%% loss), %s events/s, %s lost\n",
		fmtv(v(tp, "off-MB/s"), "%.0f"), fmtv(v(tp, "on-MB/s"), "%.0f"), fmtv(v(tp, "%-loss"), "%.1f"),
		fmtv(v(tp, "events/s"), "%.0f"), fmtv(v(tp, "lost-events"), "%d")
	er = "BenchmarkEventRate"
	printf "  events read without loss: %s events/s; unpaced flood: %s events/s, %s lost\n",
		fmtv(v(er, "events/s-lossless"), "%.0f"), fmtv(v(er, "flood-events/s"), "%.0f"), fmtv(v(er, "flood-lost"), "%d")
	at = "BenchmarkAttach/"
	printf "  attach 100 interfaces: tcx %s ms (detach %s ms), clsact %s ms (detach %s ms)\n",
		fmtv(v(at "tcx", "attach-ms"), "%.1f"), fmtv(v(at "tcx", "detach-ms"), "%.1f"),
		fmtv(v(at "clsact", "attach-ms"), "%.1f"), fmtv(v(at "clsact", "detach-ms"), "%.1f")

	print ""
	print "Goals (issues 2 and 3):"
	goal("N=100: hopcheck faster than the shell recipe", v(br "100/hopcheck", "x-faster"), "%.1f", "x", ">=", 15)
	goal("N=500: hopcheck ms per container", v(br "500/hopcheck", "ms/container"), "%.2f", "ms", "<=", 3)
	goal("N=500: hopcheck run peak resident memory", v(br "500/cli", "MB-maxrss"), "%.0f", "MB", "<", 150)
	goal("N=500: the same, traced", v(br "500/cli-traced", "MB-maxrss"), "%.0f", "MB", "<", 150)
	goal("lost events, N=500 traced", v(br "500/hopcheck-traced", "lost-events"), "%d", "", "==", 0)
	goal("scenario library end to end (scenarios/)", v(lib, "ms/run"), "%.0f", "ms", "<", 2000)
	goal("seed scenarios end to end (scenarios/*.yaml)", v(seed, "ms/run"), "%.0f", "ms", "<", 2000)
	goal("tc program per invocation (paced)", v(inv "paced", "ns/invocation"), "%.0f", "ns", "<", 150)
	goal("tc program per invocation (burst)", v(inv "burst", "ns/invocation"), "%.0f", "ns", "<", 150)
	goal("TCP throughput lost to tracing", v(tp, "%-loss"), "%.1f", "%", "<", 10)
	goal("lost events in the scenario library", v(lib, "lost-events"), "%d", "", "==", 0)
	goal("attach 100 interfaces (tcx)", v(at "tcx", "attach-ms"), "%.1f", "ms", "<", 200)
	goal("attach 100 interfaces (clsact)", v(at "clsact", "attach-ms"), "%.1f", "ms", "<", 200)

	tc = "BenchmarkTracingCost/"
	print ""
	print "Tracing cost, side by side with the untraced run in each iteration (BenchmarkTracingCost):"
	printf "  library: untraced %s ms, traced %s ms (x%s), traced with tcx %s ms (x%s), %s lost events\n",
		fmtv(v(tc "library", "untraced-ms"), "%.0f"), fmtv(v(tc "library", "traced-ms"), "%.0f"),
		fmtv(v(tc "library", "x-traced"), "%.2f"), fmtv(v(tc "library", "traced-tcx-ms"), "%.0f"),
		fmtv(v(tc "library", "x-traced-tcx"), "%.2f"), fmtv(v(tc "library", "lost-events"), "%d")
	split("200 1000", ns, " ")
	for (i = 1; i <= 2; i++) {
		w = tc "bridge-n=" ns[i]
		printf "  bridge n=%s: untraced %s ms, traced %s ms (x%s), --pcap %s ms (x%s), %s lost events, %s frames lost from captures\n",
			ns[i], fmtv(v(w, "untraced-ms"), "%.0f"), fmtv(v(w, "traced-ms"), "%.0f"), fmtv(v(w, "x-traced"), "%.2f"),
			fmtv(v(w, "pcap-ms"), "%.0f"), fmtv(v(w, "x-pcap"), "%.2f"), fmtv(v(w, "lost-events"), "%d"),
			fmtv(v(w, "capture-lost"), "%d")
	}

	print ""
	print "Goals (issue 8):"
	goal("library traced / untraced", v(tc "library", "x-traced"), "%.2f", "x", "<=", 1.3)
	goal("1000 containers traced / untraced", v(tc "bridge-n=1000", "x-traced"), "%.2f", "x", "<=", 2)
	goal("1000 containers traced: lost events", v(tc "bridge-n=1000", "lost-events"), "%d", "", "==", 0)
	goal("200 containers with --pcap / without", v(tc "bridge-n=200", "x-pcap"), "%.2f", "x", "<=", 2)
	goal("tc program per invocation, non-probe packet", v(inv "non-probe", "ns/invocation"), "%.0f", "ns", "<=", 150)
}
