// Package realnode starts a real container runtime (Podman with netavark,
// Docker, the CNI reference plugins driven by libcni, or containerd's CRI
// plugin driven by crictl, as on a Kubernetes node) inside a sandbox
// network namespace that plays a container host ("the node"), so that
// integration tests can break and diagnose real container networks without
// ever touching the machine's own namespace.
//
// A Node has an uplink eth0 (198.51.100.2/24) to a second sandbox, the
// "internet" (198.51.100.1/24, and 203.0.113.8 on its lo). Everything a
// runtime makes (bridges, veths, iptables rules, sysctls) lives in the
// node; its daemons run there, in a private mount namespace of their own
// (`ip netns exec`), and t.Cleanup removes containers, stops daemons,
// kills what is left in the node's namespaces and deletes them.
package realnode
