package container

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Docker is the Docker Engine, asked with `docker inspect --type
// container NAME`. The CLI talks to the daemon DOCKER_HOST or the current
// docker context names.
type Docker struct{}

func (Docker) Name() string { return "docker" }
func (Docker) CLI() string  { return "docker" }

func (d Docker) Inspect(ctx context.Context, run Run, name string) (Container, error) {
	return engineInspect(ctx, run, d, name,
		"docker asks the daemon that DOCKER_HOST or the current 'docker context' names")
}

// Podman is Podman, asked with `podman inspect --type container NAME`.
// The CLI reads the storage CONTAINERS_STORAGE_CONF configures (root's
// and each rootless user's are apart), or a remote service at
// CONTAINER_HOST.
type Podman struct{}

func (Podman) Name() string { return "podman" }
func (Podman) CLI() string  { return "podman" }

func (p Podman) Inspect(ctx context.Context, run Run, name string) (Container, error) {
	return engineInspect(ctx, run, p, name,
		"podman looks in the storage CONTAINERS_STORAGE_CONF configures, or asks CONTAINER_HOST; a rootless user's containers are not root's")
}

// engineInspect runs the inspect that Docker and Podman share.
func engineInspect(ctx context.Context, run Run, rt Runtime, name, hint string) (Container, error) {
	out, err := run(ctx, []string{rt.CLI(), "inspect", "--type", "container", "--", name})
	if err != nil {
		return Container{}, classify(rt.Name(), name, err, hint)
	}
	return ParseEngineInspect(rt.Name(), name, out)
}

// engineJSON is the part of `docker inspect` and `podman inspect` output
// that hopcheck reads: both print a JSON array of one object per
// container with these fields.
type engineJSON struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State struct {
		Status  string `json:"Status"`
		Running bool   `json:"Running"`
		Pid     int    `json:"Pid"`
	} `json:"State"`
	NetworkSettings struct {
		Networks map[string]engineNetwork `json:"Networks"`
	} `json:"NetworkSettings"`
}

// engineNetwork is one network of a container as `docker inspect` and
// `podman inspect` print it.
type engineNetwork struct {
	IPAddress           string `json:"IPAddress"`
	IPPrefixLen         int    `json:"IPPrefixLen"`
	Gateway             string `json:"Gateway"`
	GlobalIPv6Address   string `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int    `json:"GlobalIPv6PrefixLen"`
	IPv6Gateway         string `json:"IPv6Gateway"`
	MacAddress          string `json:"MacAddress"`
}

// addresses returns the addresses of the networks, sorted by network
// name; fields that do not parse are left out.
func (c engineJSON) addresses() []Address {
	var out []Address
	for _, name := range slices.Sorted(maps.Keys(c.NetworkSettings.Networks)) {
		n := c.NetworkSettings.Networks[name]
		for _, a := range []struct {
			addr string
			bits int
			gw   string
		}{{n.IPAddress, n.IPPrefixLen, n.Gateway}, {n.GlobalIPv6Address, n.GlobalIPv6PrefixLen, n.IPv6Gateway}} {
			ip, err := netip.ParseAddr(a.addr)
			if err != nil || a.bits <= 0 || a.bits > ip.BitLen() {
				continue
			}
			gw, _ := netip.ParseAddr(a.gw)
			out = append(out, Address{Network: name, MAC: strings.ToLower(n.MacAddress), Addr: netip.PrefixFrom(ip, a.bits), Gateway: gw})
		}
	}
	return out
}

// ParseEngineInspect reads the output of `docker inspect --type
// container` or `podman inspect --type container` for the container
// asked for as name. runtime is the runtime's name for errors.
func ParseEngineInspect(runtime, name string, out []byte) (Container, error) {
	var list []engineJSON
	if err := json.Unmarshal(out, &list); err != nil {
		return Container{}, &Error{Runtime: runtime, Name: name, Err: ErrBadOutput, Detail: err.Error()}
	}
	switch len(list) {
	case 0:
		return Container{}, &Error{Runtime: runtime, Name: name, Err: ErrNotFound}
	case 1:
	default:
		return Container{}, &Error{Runtime: runtime, Name: name, Err: ErrAmbiguous, Detail: fmt.Sprintf("%d containers", len(list))}
	}
	c := list[0]
	if c.ID == "" || c.Name == "" {
		return Container{}, &Error{Runtime: runtime, Name: name, Err: ErrBadOutput, Detail: "no Id or Name"}
	}
	// Docker names start with '/', Podman's do not.
	ct, err := fromState(runtime, strings.TrimPrefix(c.Name, "/"), c.ID, c.State.Pid, c.State.Running, c.State.Status)
	if err != nil {
		return ct, err
	}
	ct.Addresses = c.addresses()
	return ct, nil
}
