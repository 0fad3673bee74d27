// Package container finds a running container of Docker, Podman or a CRI
// runtime (containerd, CRI-O) by name and gives its network namespace.
//
// It asks each runtime through its own command-line tool's inspect
// (`docker inspect`, `podman inspect`, `crictl inspect`), never through a
// runtime SDK, so hopcheck sees what the user's CLI sees: the CLI reads
// its own environment and configuration (DOCKER_HOST and docker
// contexts, CONTAINER_HOST and CONTAINERS_STORAGE_CONF for Podman,
// CONTAINER_RUNTIME_ENDPOINT and /etc/crictl.yaml for crictl).
//
// Each runtime is one type behind the Runtime interface, listed in one
// table (Runtimes). Parsing their output is pure and table-tested from
// real inspect output; running the CLIs is a thin shell around it.
package container
