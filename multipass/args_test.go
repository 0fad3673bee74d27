package multipass

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLaunchArgs(t *testing.T) {
	tests := []struct {
		name    string
		opts    LaunchOptions
		timeout time.Duration
		want    []string
		wantErr string
	}{
		{
			name: "name only leaves multipass defaults",
			opts: LaunchOptions{Name: "hopcheck"},
			want: []string{"launch", "--name", "hopcheck"},
		},
		{
			name:    "everything",
			opts:    LaunchOptions{Name: "hc-1", Image: "24.04", CPUs: 2, Memory: "2G", Disk: "10G", CloudInit: []byte("#cloud-config\n")},
			timeout: 20 * time.Minute,
			want: []string{"launch", "--name", "hc-1", "--cpus", "2", "--memory", "2G", "--disk", "10G",
				"--cloud-init", "-", "--timeout", "1200", "24.04"},
		},
		{
			name: "empty cloud-init is still cloud-init",
			opts: LaunchOptions{Name: "a", CloudInit: []byte{}},
			want: []string{"launch", "--name", "a", "--cloud-init", "-"},
		},
		{
			name:    "sub-second timeout is not passed",
			opts:    LaunchOptions{Name: "a"},
			timeout: 500 * time.Millisecond,
			want:    []string{"launch", "--name", "a"},
		},
		{name: "missing name", opts: LaunchOptions{}, wantErr: "invalid instance name"},
		{name: "name like an option", opts: LaunchOptions{Name: "--all"}, wantErr: "invalid instance name"},
		{name: "bad memory", opts: LaunchOptions{Name: "a", Memory: "lots"}, wantErr: `--memory "lots"`},
		{name: "bad disk", opts: LaunchOptions{Name: "a", Disk: "10 G"}, wantErr: `--disk "10 G"`},
		{name: "negative cpus", opts: LaunchOptions{Name: "a", CPUs: -1}, wantErr: "negative"},
		{name: "image like an option", opts: LaunchOptions{Name: "a", Image: "--help"}, wantErr: "looks like an option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := launchArgs(tt.opts, tt.timeout)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("launchArgs() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("launchArgs() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"hopcheck", true},
		{"hc-1", true},
		{"a", true},
		{"Noble2", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"1vm", false},
		{"vm-", false},
		{"-vm", false},
		{"vm_1", false},
		{"vm.local", false},
		{"vm 1", false},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalidName", tt.name, err)
		}
	}
}

func TestCommandArgs(t *testing.T) {
	tests := []struct {
		name string
		got  func() ([]string, error)
		want []string
	}{
		{"info", func() ([]string, error) { return infoArgs("hc"), nil }, []string{"info", "--format", "json", "hc"}},
		{"list", func() ([]string, error) { return listArgs(), nil }, []string{"list", "--format", "json"}},
		{
			"exec keeps inner options behind --",
			func() ([]string, error) { return execArgs("hc", []string{"sudo", "ls", "-l", "/"}) },
			[]string{"exec", "hc", "--", "sudo", "ls", "-l", "/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCommandArgsErrors(t *testing.T) {
	if _, err := execArgs("hc", nil); err == nil {
		t.Error("execArgs with no command: want an error")
	}
}
