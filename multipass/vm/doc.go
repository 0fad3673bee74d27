// Package vm runs hopcheck inside a Multipass VM: it makes sure the VM
// exists and runs (launching it with cloud-init when missing), puts a
// hopcheck binary for the guest's architecture and the scenario files into a
// per-run directory in the guest, runs `sudo hopcheck run` there with the
// guest's output streamed back as it comes, brings the JSON and JUnit
// reports and the packet captures home, and returns the guest run's exit
// code. It also backs `hopcheck vm up|shell|down`.
//
// The guest side of a run lives under the default user's home directory
// (found with `printenv HOME` in the guest), which multipass exec runs as;
// only the run itself and the packing of its results use sudo. Files travel
// as one tar stream each way on multipass's standard streams (into
// `multipass exec NAME -- tar -x`, out of `multipass exec NAME -- sudo tar
// -c`), never as files the multipass client must open, which a strictly
// confined multipass (the snap on Linux) could not do outside the user's
// home. The stream keeps the scenarios' relative layout and the binary's
// mode; the one coming back is unpacked as untrusted input.
//
// By default Run deletes the VM it launched when it is done
// (RunOptions.KeepVM keeps it): a fresh VM per run means no namespace, rule
// or module left by an earlier or killed run can change the result, which
// is what CI needs. A VM that existed before the run (made with `hopcheck
// vm up` or by hand) is the user's and is never deleted; only the run's
// directory in it is removed. Keeping a VM saves the minutes a launch takes
// when iterating by hand.
package vm
