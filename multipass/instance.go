package multipass

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// State is an instance's state as multipass names it.
type State string

// The states multipass reports (status_string_for in
// src/client/cli/formatter/format_utils.cpp).
const (
	StateRunning         State = "Running"
	StateStopped         State = "Stopped"
	StateDeleted         State = "Deleted"
	StateStarting        State = "Starting"
	StateRestarting      State = "Restarting"
	StateDelayedShutdown State = "Delayed Shutdown"
	StateSuspending      State = "Suspending"
	StateSuspended       State = "Suspended"
	StateUnknown         State = "Unknown"
)

var knownStates = []State{
	StateRunning, StateStopped, StateDeleted, StateStarting, StateRestarting,
	StateDelayedShutdown, StateSuspending, StateSuspended, StateUnknown,
}

// parseState maps multipass's state text to a State. Multipass before 1.0
// printed states in capitals ("RUNNING"); both spellings give the same
// State. A state this package does not know is kept as written.
func parseState(s string) State {
	for _, k := range knownStates {
		if strings.EqualFold(s, string(k)) {
			return k
		}
	}
	return State(s)
}

// Instance is what multipass reports about one instance. List fills Name,
// State, IPv4 and Release only; Info fills the rest where multipass knows it
// (a stopped instance has no load, usage or addresses).
type Instance struct {
	Name  string
	State State
	// IPv4 lists the instance's addresses, the default interface's first.
	IPv4 []string
	// Release is the running system's release ("Ubuntu 24.04.1 LTS").
	Release string
	// ImageRelease is the release of the image it was launched from
	// ("24.04 LTS").
	ImageRelease string
	ImageHash    string
	CPUs         int
	// Load is the 1, 5 and 15 minute load average.
	Load []float64
	// Disks maps a disk name ("sda1") to its usage in bytes.
	Disks map[string]Usage
	// Memory is the memory usage in bytes.
	Memory Usage
	// Mounts maps a path in the instance to the host path mounted there.
	Mounts    map[string]string
	Snapshots int
}

// Usage is a used/total pair in bytes; zero where multipass did not say.
type Usage struct {
	Used, Total uint64
}

// flexUint decodes a count that multipass prints as a JSON number in some
// fields ("memory") and as a string in others ("cpu_count", "disks"), and
// as an empty string when it does not know.
type flexUint uint64

func (f *flexUint) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	// Numbers may come as floats from some formatters; keep the integer part.
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not a count: %s", b)
	}
	*f = flexUint(v)
	return nil
}

type jsonUsage struct {
	Used  flexUint `json:"used"`
	Total flexUint `json:"total"`
}

type jsonInfoEntry struct {
	State         string               `json:"state"`
	IPv4          []string             `json:"ipv4"`
	Release       string               `json:"release"`
	ImageRelease  string               `json:"image_release"`
	ImageHash     string               `json:"image_hash"`
	CPUCount      flexUint             `json:"cpu_count"`
	Load          []float64            `json:"load"`
	Disks         map[string]jsonUsage `json:"disks"`
	Memory        jsonUsage            `json:"memory"`
	SnapshotCount flexUint             `json:"snapshot_count"`
	Mounts        map[string]struct {
		SourcePath string `json:"source_path"`
	} `json:"mounts"`
}

// parseInfo decodes `multipass info --format json`:
//
//	{"errors": [], "info": {"NAME": {"state": "Running", "ipv4": [...], ...}}}
//
// and returns the instances sorted by name.
func parseInfo(data []byte) ([]Instance, error) {
	var doc struct {
		Info map[string]jsonInfoEntry `json:"info"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode info JSON: %w", err)
	}
	if doc.Info == nil {
		return nil, fmt.Errorf("decode info JSON: no \"info\" object")
	}
	out := make([]Instance, 0, len(doc.Info))
	for name, e := range doc.Info {
		in := Instance{
			Name:         name,
			State:        parseState(e.State),
			IPv4:         e.IPv4,
			Release:      e.Release,
			ImageRelease: e.ImageRelease,
			ImageHash:    e.ImageHash,
			CPUs:         int(e.CPUCount),
			Load:         e.Load,
			Memory:       Usage{Used: uint64(e.Memory.Used), Total: uint64(e.Memory.Total)},
			Snapshots:    int(e.SnapshotCount),
		}
		if len(e.Disks) > 0 {
			in.Disks = make(map[string]Usage, len(e.Disks))
			for d, u := range e.Disks {
				in.Disks[d] = Usage{Used: uint64(u.Used), Total: uint64(u.Total)}
			}
		}
		if len(e.Mounts) > 0 {
			in.Mounts = make(map[string]string, len(e.Mounts))
			for target, m := range e.Mounts {
				in.Mounts[target] = m.SourcePath
			}
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// parseList decodes `multipass list --format json`:
//
//	{"list": [{"name": "x", "state": "Running", "ipv4": [...], "release": "Ubuntu 24.04 LTS"}]}
func parseList(data []byte) ([]Instance, error) {
	var doc struct {
		List *[]struct {
			Name    string   `json:"name"`
			State   string   `json:"state"`
			IPv4    []string `json:"ipv4"`
			Release string   `json:"release"`
		} `json:"list"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode list JSON: %w", err)
	}
	if doc.List == nil {
		return nil, fmt.Errorf("decode list JSON: no \"list\" array")
	}
	out := make([]Instance, 0, len(*doc.List))
	for _, e := range *doc.List {
		out = append(out, Instance{Name: e.Name, State: parseState(e.State), IPv4: e.IPv4, Release: e.Release})
	}
	return out, nil
}
