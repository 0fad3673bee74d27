package qemu

import (
	"fmt"
	"strings"
)

// Guest paths.
const (
	guestRunDir  = "/run/hopcheck-guest" // the run directory, as multipass/vm lays it out
	guestBundle  = "/hopcheck-bundle.tar"
	guestResults = "/dev/vda" // the raw results disk
)

// Console markers: the init says where it is on the console, one line
// each, "@@hopcheck-guest WORD [ARG]". The host acts on them.
const (
	markerPrefix  = "@@hopcheck-guest "
	markerBooted  = "booted"  // ARG: uname -r
	markerRun     = "run"     // the guest run starts
	markerResults = "results" // ARG: tar's exit status
	markerExit    = "exit"    // ARG: the guest run's exit status
	markerFail    = "fail"    // ARG: why the init gave up
)

// initScript is the guest's /init: mount what hopcheck needs, load the boot
// modules (the rest load on demand, with busybox modprobe), unpack the
// bundle, run hopcheck with its output on ttyS1 and ttyS2, write the
// results archive onto the results disk, say the exit status, power off.
// It never exits: init exiting panics the kernel.
func initScript(workdir string, argv, env []string, extra string) string {
	var b strings.Builder
	q := shellQuote
	fmt.Fprintf(&b, `#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /run /tmp /var
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ln -sf ../run /var/run
say() { echo "%s$*"; }
giveup() { say %s "$*"; sync; reboot -f; sleep 60; }
say %s "$(uname -r)"
echo /sbin/modprobe >/proc/sys/kernel/modprobe
for m in %s; do modprobe -q "$m"; done
i=0
while [ ! -b %s ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
[ -b %s ] || giveup "no results disk (%s): virtio_blk did not come up"
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
mkdir -p %s/%s
tar -x -f %s -C %s || giveup "cannot unpack the bundle"
rm -f %s
`, markerPrefix, markerFail, markerBooted, strings.Join(bootModules, " "),
		guestResults, guestResults, guestResults,
		guestRunDir, outDirName, guestBundle, guestRunDir, guestBundle)
	fmt.Fprintf(&b, "say %s\n", markerRun)
	b.WriteString(extra)
	fmt.Fprintf(&b, "cd %s || giveup \"no working directory\"\n", q(workdir))
	b.WriteString("env")
	for _, e := range env {
		b.WriteString(" " + q(e))
	}
	for _, a := range argv {
		b.WriteString(" " + q(a))
	}
	b.WriteString(" </dev/null >/dev/ttyS1 2>/dev/ttyS2\n")
	fmt.Fprintf(&b, `rc=$?
cd /
tar -c -f %s -C %s/%s .
say %s $?
sync
say %s $rc
reboot -f
sleep 60
`, guestResults, guestRunDir, outDirName, markerResults, markerExit)
	return b.String()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
