package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// TestNFTStep checks that a namespace's nft ruleset is parsed, planned
// after its iptables commands, and printed as one nft argument.
func TestNFTStep(t *testing.T) {
	const yaml = `
name: t
namespaces:
  a:
    iptables:
      - -P FORWARD DROP
    nft: |
      table inet filter {
        chain forward { type filter hook forward priority filter; policy accept; }
      }
`
	sc, err := scenario.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if ns := sc.Namespace("a"); !strings.HasPrefix(ns.NFT, "table inet filter {") || ns.NFTPos.Line != 7 {
		t.Fatalf("parsed nft %q at %+v", ns.NFT, ns.NFTPos)
	}
	p, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	ipt := slices.IndexFunc(p.Steps, func(s Step) bool { return s.Kind == RunIPTables })
	nft := slices.IndexFunc(p.Steps, func(s Step) bool { return s.Kind == RunNFT })
	if nft < 0 || nft < ipt || p.Steps[nft].Field != "namespaces.a.nft" {
		t.Fatalf("steps: iptables at %d, nft at %d: %+v", ipt, nft, p.Steps)
	}
	argv := p.Steps[nft].Argv(nil)
	if want := []string{"ip", "netns", "exec", "a", "nft", sc.Namespace("a").NFT}; !slices.Equal(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
	if _, err := scenario.Parse("t.yaml", []byte("name: t\nnamespaces:\n  a:\n    nft: \"  \"\n")); err == nil || !strings.Contains(err.Error(), "nft ruleset is empty") {
		t.Errorf("empty nft: %v", err)
	}
}
