package multipass

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseInfo(t *testing.T) {
	tests := []struct {
		fixture string
		want    Instance
	}{
		{
			fixture: "info-running.json",
			want: Instance{
				Name:         "hopcheck",
				State:        StateRunning,
				IPv4:         []string{"10.91.108.47", "172.17.0.1"},
				Release:      "Ubuntu 24.04.1 LTS",
				ImageRelease: "24.04 LTS",
				ImageHash:    "2e0c90562af1f63b8d1f3d1bfbd2d3f5a7d0e6c1b7c3f1d4f7a1e0b9c8d7e6f5",
				CPUs:         2,
				Load:         []float64{0.08, 0.05, 0.01},
				Disks:        map[string]Usage{"sda1": {Used: 2055208960, Total: 10213466112}},
				Memory:       Usage{Used: 242614272, Total: 2012889088},
				Mounts:       map[string]string{"/home/ubuntu/src": "/Users/dev/src"},
			},
		},
		{
			// A stopped instance: empty strings where multipass has no
			// runtime information.
			fixture: "info-stopped.json",
			want: Instance{
				Name:         "jammy-vm",
				State:        StateStopped,
				IPv4:         []string{},
				ImageRelease: "22.04 LTS",
				ImageHash:    "e1ce033239f0038dca5ef09e582762ba0d0dfdedc1d329bc51bb0e9f5057af9d",
				Load:         []float64{},
				Disks:        map[string]Usage{"sda1": {}},
				Snapshots:    1,
			},
		},
		{
			// Multipass before 1.0: capitals in the state, no cpu_count.
			fixture: "info-legacy.json",
			want: Instance{
				Name:         "announceable-rodney",
				State:        StateRunning,
				IPv4:         []string{"10.74.70.141"},
				Release:      "Ubuntu 16.04.4 LTS",
				ImageRelease: "16.04 LTS",
				ImageHash:    "bc990872f070249450fc187d668bf65e2f87ffa3d7cf6e2934cb84b62af368e1",
				Load:         []float64{0, 0, 0},
				Disks:        map[string]Usage{"sda1": {Used: 1076072448, Total: 5136297984}},
				Memory:       Usage{Used: 42754048, Total: 1040318464},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := parseInfo(readFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("parseInfo() returned %d instances, want 1", len(got))
			}
			if !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("parseInfo() =\n%+v\nwant\n%+v", got[0], tt.want)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		fixture string
		want    []Instance
	}{
		{
			fixture: "list.json",
			want: []Instance{
				{Name: "hopcheck", State: StateRunning, IPv4: []string{"10.91.108.47", "172.17.0.1"}, Release: "Ubuntu 24.04 LTS"},
				{Name: "jammy-vm", State: StateStopped, IPv4: []string{}, Release: "Ubuntu 22.04 LTS"},
				{Name: "old-vm", State: StateDeleted, IPv4: []string{}, Release: "Not Available"},
			},
		},
		{
			// Multipass 1.9: release without the OS name.
			fixture: "list-legacy.json",
			want: []Instance{
				{Name: "ssh-audit-logger-focal", State: StateRunning, IPv4: []string{"192.168.64.28"}, Release: "20.04 LTS"},
				{Name: "openvpn", State: StateRunning, IPv4: []string{"192.168.64.15", "192.168.254.1"}, Release: "20.04 LTS"},
				{Name: "bionic", State: StateStopped, IPv4: []string{}, Release: "18.04 LTS"},
			},
		},
		{fixture: "list-empty.json", want: []Instance{}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := parseList(readFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseList() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]byte) ([]Instance, error)
		data  string
	}{
		{"info not JSON", parseInfo, "info failed: oops"},
		{"info without info", parseInfo, `{"errors": []}`},
		{"info bad count", parseInfo, `{"info": {"a": {"cpu_count": "two"}}}`},
		{"list not JSON", parseList, ""},
		{"list without list", parseList, `{"info": {}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.parse([]byte(tt.data)); err == nil {
				t.Errorf("parsed %q into %+v, want an error", tt.data, got)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	tests := map[string]State{
		"Running":          StateRunning,
		"RUNNING":          StateRunning,
		"Delayed Shutdown": StateDelayedShutdown,
		"DELAYED SHUTDOWN": StateDelayedShutdown,
		"suspended":        StateSuspended,
		"Hibernating":      State("Hibernating"),
	}
	for in, want := range tests {
		if got := parseState(in); got != want {
			t.Errorf("parseState(%q) = %q, want %q", in, got, want)
		}
	}
}
