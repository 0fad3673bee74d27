package build

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// loadNFT loads an nftables ruleset inside ns with `nft -f`. The ruleset
// and nft's output go through files, so that starting nft inside the
// namespace (it inherits the namespace of the thread that forks it)
// starts no goroutine there; it is waited for outside.
func loadNFT(ns netns.Handle, ruleset string) error {
	path, err := exec.LookPath("nft")
	if err != nil {
		return fmt.Errorf("nft not found (install nftables): %w", err)
	}
	in, err := os.CreateTemp("", "hopcheck-nft-")
	if err != nil {
		return err
	}
	defer os.Remove(in.Name())
	defer in.Close()
	if _, err := in.WriteString(ruleset); err != nil {
		return fmt.Errorf("write %s: %w", in.Name(), err)
	}
	out, err := os.CreateTemp("", "hopcheck-nft-out-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(path, "-f", in.Name())
	cmd.Stdout, cmd.Stderr = out, out
	if err := netns.Do(ns, cmd.Start); err != nil {
		return fmt.Errorf("start nft: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		return fmt.Errorf("nft -f: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	return nil
}
