package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

// TestHTMLReportInBrowser runs a scenario whose second ping is dropped by
// the host's FORWARD policy with --html, and opens the page in a real
// headless browser (Debian's chromium): it loads from the file with no
// console message and fetches nothing; the DOM shows the failed check
// open, with its path drawn on the topology, the hop timeline ending in
// the drop, and the diagnosis with its fix; a screenshot is taken
// (kept in $HOPCHECK_SCREENSHOT_DIR when set).
func TestHTMLReportInBrowser(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		privtest.Unavailable(t, "a headless browser (Debian: chromium)")
	}
	if _, err := exec.LookPath("dot"); err != nil {
		privtest.Unavailable(t, "Graphviz's dot (Debian: graphviz)")
	}
	e := newEnv(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	res := e.run("run", "--html", page, "testdata/html-drop.yaml")
	if res.code != exitCheckFailed {
		t.Fatalf("run: %v; want exit code %d", res, exitCheckFailed)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	// Self-contained: nothing to fetch, no script at all.
	if m := regexp.MustCompile(`(?i)<script|<link|<img|<iframe|@import|url\(|(src|href)\s*=\s*["']?(https?:)?//`).Find(html); m != nil {
		t.Errorf("the page would fetch something or run a script: %q", m)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chrome := func(args ...string) (stdout, stderr string) {
		args = append([]string{"--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
			// Any fetch from the network would fail, and be logged.
			"--host-resolver-rules=MAP * ~NOTFOUND"}, args...)
		cmd := exec.CommandContext(ctx, browser, append(args, "file://"+page)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", browser, strings.Join(args, " "), err, errb.String())
		}
		return out.String(), errb.String()
	}
	dom, logs := chrome("--dump-dom")
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "CONSOLE") || strings.Contains(l, "Uncaught") || strings.Contains(l, "net::ERR") {
			t.Errorf("browser console: %s", l)
		}
	}
	failed := regexp.MustCompile(`(?s)<details class="check FAIL" open="">.*?</details>`).FindString(dom)
	if failed == "" {
		t.Fatalf("the DOM has no open failed check:\n%.2000s", dom)
	}
	for _, want := range []string{
		"ns1 reaches the internet",
		`class="node path"`,                    // the path on the picture
		`id="if:ns1/veth_1" class="node path"`, // where it started
		"NETFILTER_DROP",                       // the drop, in the timeline
		`<div class="cause">cause: netfilter-drop`,
		`<div class="fix">fix: <code>iptables`,
	} {
		if !strings.Contains(failed, want) {
			t.Errorf("the failed check in the DOM lacks %q", want)
		}
	}
	if !strings.Contains(dom, `<span class="badge FAIL" id="result">FAIL</span>`) {
		t.Error("the DOM does not show the run as failed")
	}

	shotDir := os.Getenv("HOPCHECK_SCREENSHOT_DIR")
	if shotDir == "" {
		shotDir = dir
	}
	shot := filepath.Join(shotDir, "html-report.png")
	chrome("--screenshot="+shot, "--window-size=1100,1500")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Errorf("screenshot %s: %v (size %v)", shot, err, fi)
	}
	t.Logf("screenshot: %s", shot)
}
