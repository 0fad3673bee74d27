// Package qemu runs hopcheck under another Linux kernel in a throwaway
// qemu VM: the backend of `hopcheck run --kernel PATH`, beside the
// Multipass one (multipass/vm), whose bundle, guest command line and
// results handling it shares.
//
// PATH is a Debian or Ubuntu linux-image-*.deb, or a vmlinuz with its
// modules beside it as `dpkg -x` lays them out (ROOT/boot/vmlinuz-REL and
// ROOT/lib/modules/REL or ROOT/usr/lib/modules/REL). Run builds an
// initramfs in memory (a newc cpio): an init script, busybox (from the
// busybox-static package), the host's iptables with the libraries and
// xtables extensions it loads, the kernel modules hopcheck's scenarios
// need with their dependencies (decompressed, with a modules.dep and
// modules.alias that busybox modprobe reads, so the kernel's own module
// requests work), and the bundle of a static hopcheck and the scenarios.
//
// qemu-system-x86_64 boots it with no network (-nic none: the guest's
// namespaces are all there is), KVM when /dev/kvm can be used and TCG
// otherwise. The guest's `hopcheck run --json --junit [--pcap]` writes its
// standard output and error to two serial ports that the host streams as
// they come; the kernel console is a third, read for the init's progress
// markers and for panics. The reports and captures come home as a tar
// archive that the guest writes onto a raw virtio disk, a sparse file
// here, which the host reads back as untrusted input. The guest powers off
// (-no-reboot, panic=-1), and Run returns the guest run's exit code. A
// kernel panic, a guest that stops before the run ends, or one that
// outlives its timeout is an error of its own (ErrGuestPanic,
// ErrGuestStopped, ErrGuestTimeout), never a failed check.
//
// Nothing is downloaded at run time: qemu, busybox-static and iptables
// come from the distribution's packages.
package qemu
