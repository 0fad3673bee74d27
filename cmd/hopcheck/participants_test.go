package main

import (
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/internal/netns"
)

func TestCheckParticipants(t *testing.T) {
	closed := netns.Handle(-1)
	node := participant{name: "node", given: "--node", path: "/proc/self/ns/net", h: closed}
	red := participant{name: "red", given: "--netns red", path: "red", h: closed}
	dockerWeb := participant{name: "web", given: "--container docker:web", path: "/proc/10/ns/net", h: closed}
	podmanWeb := participant{name: "web", given: "--container podman:web", path: "/proc/20/ns/net", h: closed}
	nodeCtr := participant{name: "node", given: "--container docker:node", path: "/proc/30/ns/net", h: closed}
	tests := []struct {
		name string
		ps   []participant
		want []string // the error says these; none: no error
	}{
		{"all apart", []participant{node, red, dockerWeb}, nil},
		{"one name in two runtimes", []participant{dockerWeb, podmanWeb},
			[]string{"--container docker:web and --container podman:web are both called web", "--netns /proc/20/ns/net"}},
		{"a container called node with --node", []participant{node, nodeCtr},
			[]string{"--node and --container docker:node are both called node"}},
		{"a namespace given twice", []participant{red, red}, []string{"--netns red is given twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkParticipants(tt.ps)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one saying %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestCheckParticipantFlags(t *testing.T) {
	tests := []struct {
		f    participantFlags
		want string
	}{
		{participantFlags{netns: []string{"a"}, containers: []string{"web", "podman:db"}}, ""},
		{participantFlags{containers: []string{"web", " "}}, "--container: spec 2 of 2 is empty"},
		{participantFlags{netns: []string{""}}, "--netns: name 1 of 1 is empty"},
	}
	for _, tt := range tests {
		err := checkParticipantFlags(tt.f)
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.f, err, tt.want)
		}
	}
}
