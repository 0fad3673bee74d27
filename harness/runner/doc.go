// Package runner runs scenarios end to end: build the topology, attach the
// tracer, run the checks in order with each probe's trace, diagnose
// failures, stream results to an observer, and tear everything down after
// success, failure, build error, panic or cancellation.
package runner
