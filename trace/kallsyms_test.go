package trace

import (
	"os"
	"strings"
	"testing"
)

func TestKallsymsSymbolize(t *testing.T) {
	f, err := os.Open("testdata/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := parseKallsyms(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr uint64
		want string
	}{
		{0xffffffff81f81290, "nf_hook_slow+0x0"},
		{0xffffffff81f8132c, "nf_hook_slow+0x9c"},
		// Data symbols are not text: an address after some_data belongs
		// to the text symbol before it.
		{0xffffffff81f81210, "skb_release_data+0xecb10"},
		{0xffffffff81f81408, "weak_text+0x8"},
		// Aliases: the first one listed wins, as in the kernel.
		{0xffffffff81000004, "_stext+0x4"},
		// Module symbols are out of address order in the file.
		{0xffffffffa0000010, "nft_do_chain+0x10"},
		{0xffffffffc0201001, "ftrace_trampoline+0x1"},
		// Below every symbol, and the hidden address zero.
		{0xffffffff80000000, "0xffffffff80000000"},
		{0, "0x0"},
	} {
		if got := k.symbolize(tc.addr); got != tc.want {
			t.Errorf("symbolize(%#x) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestKallsymsHiddenAddresses(t *testing.T) {
	// Without permission, /proc/kallsyms shows every address as zero.
	k, err := parseKallsyms(strings.NewReader(
		"0000000000000000 T _stext\n0000000000000000 T nf_hook_slow\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.symbolize(0xffffffff81f8132c), "0xffffffff81f8132c"; got != want {
		t.Errorf("symbolize with hidden addresses = %q, want %q", got, want)
	}
}

func TestKallsymsMalformed(t *testing.T) {
	for _, in := range []string{
		"ffffffff81000000 T\n",
		"zzzzzzzzzzzzzzzz T _stext\n",
	} {
		if _, err := parseKallsyms(strings.NewReader(in)); err == nil {
			t.Errorf("parseKallsyms(%q) succeeded, want an error", in)
		}
	}
}
