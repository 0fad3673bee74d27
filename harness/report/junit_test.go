package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// node is a parsed XML element, for checking the report's shape.
type node struct {
	name     string
	attrs    map[string]string
	children []*node
	text     string
}

func (n *node) find(name string) []*node {
	var out []*node
	for _, c := range n.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// parseXML parses doc strictly (encoding/xml refuses what is not
// well-formed, including characters XML cannot hold).
func parseXML(t *testing.T, doc []byte) *node {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("report is not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	return root
}

// group is a run of children in an element's content model: any of names,
// between min and max times (max -1: unbounded).
type group struct {
	names    []string
	min, max int
}

type rule struct {
	required []string
	allowed  []string
	content  []group // in order
	textOnly bool
}

// junitSchema is the content model that the junit.xsd family (Ant's
// report format as read by Jenkins, GitLab and the GitHub reporters) agrees
// on, restricted to what every one of them accepts.
var junitSchema = map[string]rule{
	"testsuites": {
		allowed: []string{"name", "time", "tests", "failures", "errors", "disabled"},
		content: []group{{[]string{"testsuite"}, 0, -1}},
	},
	"testsuite": {
		required: []string{"name", "tests"},
		allowed:  []string{"name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname", "id", "package"},
		content: []group{
			{[]string{"properties"}, 0, 1},
			{[]string{"testcase"}, 0, -1},
			{[]string{"system-out"}, 0, 1},
			{[]string{"system-err"}, 0, 1},
		},
	},
	"properties": {content: []group{{[]string{"property"}, 0, -1}}},
	"property":   {required: []string{"name", "value"}, allowed: []string{"name", "value"}},
	"testcase": {
		required: []string{"name", "classname"},
		allowed:  []string{"name", "classname", "time", "assertions"},
		content: []group{
			{[]string{"skipped", "error", "failure"}, 0, 1},
			{[]string{"system-out"}, 0, 1},
			{[]string{"system-err"}, 0, 1},
		},
	},
	"failure":    {allowed: []string{"message", "type"}, textOnly: true},
	"error":      {allowed: []string{"message", "type"}, textOnly: true},
	"skipped":    {allowed: []string{"message", "type"}, textOnly: true},
	"system-out": {textOnly: true},
	"system-err": {textOnly: true},
}

var (
	junitTime  = regexp.MustCompile(`^[0-9]+\.[0-9]{3}$`)
	junitCount = map[string]bool{"tests": true, "failures": true, "errors": true, "skipped": true}
)

// validate reports every way n departs from junitSchema.
func validate(n *node, path string) []string {
	path += "/" + n.name
	r, ok := junitSchema[n.name]
	if !ok {
		return []string{path + ": element not in the JUnit schema"}
	}
	var errs []string
	for _, a := range r.required {
		if _, ok := n.attrs[a]; !ok {
			errs = append(errs, fmt.Sprintf("%s: missing attribute %q", path, a))
		}
	}
	for a, v := range n.attrs {
		if !slices.Contains(r.allowed, a) {
			errs = append(errs, fmt.Sprintf("%s: attribute %q not in the schema", path, a))
		}
		if a == "time" && !junitTime.MatchString(v) {
			errs = append(errs, fmt.Sprintf("%s: time %q is not seconds with 3 decimals", path, v))
		}
		if junitCount[a] {
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %s %q is not a count", path, a, v))
			}
		}
	}
	if r.textOnly && len(n.children) > 0 {
		errs = append(errs, path+": has child elements, want text only")
	}
	if !r.textOnly && strings.TrimSpace(n.text) != "" {
		errs = append(errs, fmt.Sprintf("%s: has text %q, want elements only", path, n.text))
	}
	i := 0
	for _, g := range r.content {
		seen := 0
		for i < len(n.children) && slices.Contains(g.names, n.children[i].name) && (g.max < 0 || seen < g.max) {
			seen++
			i++
		}
		if seen < g.min {
			errs = append(errs, fmt.Sprintf("%s: want at least %d of %v", path, g.min, g.names))
		}
	}
	if i < len(n.children) {
		errs = append(errs, fmt.Sprintf("%s: child <%s> not allowed here", path, n.children[i].name))
	}
	for _, c := range n.children {
		errs = append(errs, validate(c, path)...)
	}
	return errs
}

// checkCounts verifies that the count attributes agree with the testcases.
func checkCounts(t *testing.T, root *node) {
	t.Helper()
	var total, totalFail, totalErr int
	for _, s := range root.find("testsuite") {
		var tests, fail, errs int
		for _, c := range s.find("testcase") {
			tests++
			fail += len(c.find("failure"))
			errs += len(c.find("error"))
		}
		for attr, want := range map[string]int{"tests": tests, "failures": fail, "errors": errs} {
			if got := s.attrs[attr]; got != strconv.Itoa(want) {
				t.Errorf("testsuite %q: %s=%q, but it holds %d", s.attrs["name"], attr, got, want)
			}
		}
		total, totalFail, totalErr = total+tests, totalFail+fail, totalErr+errs
	}
	for attr, want := range map[string]int{"tests": total, "failures": totalFail, "errors": totalErr} {
		if got := root.attrs[attr]; got != strconv.Itoa(want) {
			t.Errorf("testsuites: %s=%q, but the suites hold %d", attr, got, want)
		}
	}
}

func junitOf(t *testing.T, r Run) (*node, []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	return parseXML(t, b.Bytes()), b.Bytes()
}

func TestJUnitShape(t *testing.T) {
	runs := map[string]Run{
		"all pass":    allPassRun(),
		"failed":      failedRun(),
		"build error": buildErrorRun(),
		"tracing off": tracingOffRun(),
		"empty":       {},
	}
	for name, r := range runs {
		t.Run(name, func(t *testing.T) {
			root, doc := junitOf(t, r)
			if root.name != "testsuites" {
				t.Fatalf("root is <%s>, want <testsuites>", root.name)
			}
			for _, e := range validate(root, "") {
				t.Error(e)
			}
			checkCounts(t, root)
			if t.Failed() {
				t.Logf("report:\n%s", doc)
			}
		})
	}
}

// TestValidateRejects makes sure the shape check above can fail.
func TestValidateRejects(t *testing.T) {
	for _, doc := range []string{
		`<testsuites><testcase name="a" classname="b"/></testsuites>`,
		`<testsuites><testsuite tests="1"/></testsuites>`,
		`<testsuites><testsuite name="s" tests="1"><testcase name="a" classname="b"><failure/><error/></testcase></testsuite></testsuites>`,
		`<testsuites><testsuite name="s" tests="1"><system-out/><testcase name="a" classname="b"/></testsuite></testsuites>`,
		`<testsuites><testsuite name="s" tests="1" time="1.5"/></testsuites>`,
		`<testsuites><testsuite name="s" tests="one"/></testsuites>`,
	} {
		if errs := validate(parseXML(t, []byte(doc)), ""); len(errs) == 0 {
			t.Errorf("validate accepted %s", doc)
		}
	}
}

func TestJUnitContent(t *testing.T) {
	root, _ := junitOf(t, failedRun())
	nat := root.find("testsuite")[1]
	if got := nat.attrs["name"]; got != "nat-egress" {
		t.Fatalf("second suite is %q, want nat-egress", got)
	}
	cases := nat.find("testcase")
	tests := []struct {
		idx                int
		name, failType     string
		bodyHas, messageIs string
	}{
		{1, "ping ns1 -> 203.0.113.8", "netfilter-drop", "dropped in host at nf_hook_slow: NETFILTER_DROP", "no reply from 203.0.113.8 within 1s"},
		{2, "udp ns1 -> 203.0.113.8:53", "udp", "details: peer=198.51.100.2:40000", "expected the probe to fail with cause netfilter-drop, but it succeeded"},
	}
	for _, tt := range tests {
		c := cases[tt.idx]
		if c.attrs["name"] != tt.name || c.attrs["classname"] != "hopcheck.nat-egress" {
			t.Errorf("testcase %d: name %q classname %q", tt.idx, c.attrs["name"], c.attrs["classname"])
		}
		f := c.find("failure")
		if len(f) != 1 {
			t.Fatalf("testcase %q: %d failures, want 1", tt.name, len(f))
		}
		if f[0].attrs["type"] != tt.failType || f[0].attrs["message"] != tt.messageIs {
			t.Errorf("testcase %q: failure type %q message %q", tt.name, f[0].attrs["type"], f[0].attrs["message"])
		}
		if !strings.Contains(f[0].text, tt.bodyHas) {
			t.Errorf("testcase %q: failure body lacks %q:\n%s", tt.name, tt.bodyHas, f[0].text)
		}
	}
	if got := len(cases[0].children); got != 0 {
		t.Errorf("passing testcase has %d children", got)
	}
}

func TestJUnitScenarioErrors(t *testing.T) {
	tests := []struct {
		name      string
		scenario  Scenario
		wantCases []string
	}{
		{"build error is one testcase", Scenario{Name: "s", BuildError: true, Error: "build: boom"}, []string{"build"}},
		{"teardown error follows the checks", Scenario{Name: "s", Error: "teardown: busy", Checks: []Check{{Name: "c", Passed: true}}}, []string{"c", "teardown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, _ := junitOf(t, Run{Scenarios: []Scenario{tt.scenario}})
			suite := root.find("testsuite")[0]
			var names []string
			for _, c := range suite.find("testcase") {
				names = append(names, c.attrs["name"])
			}
			if !slices.Equal(names, tt.wantCases) {
				t.Fatalf("testcases %v, want %v", names, tt.wantCases)
			}
			last := suite.find("testcase")[len(names)-1]
			e := last.find("error")
			if len(e) != 1 || e[0].text != tt.scenario.Error || e[0].attrs["type"] != tt.wantCases[len(names)-1] {
				t.Errorf("error element %+v, want the scenario's error", e)
			}
			if suite.attrs["errors"] != "1" {
				t.Errorf("errors=%q, want 1", suite.attrs["errors"])
			}
		})
	}
}

// TestJUnitEscaping feeds names and messages that XML cannot take as they
// are: markup characters, a CDATA terminator, control bytes and invalid
// UTF-8. The report must stay well-formed and keep what XML can hold.
func TestJUnitEscaping(t *testing.T) {
	name := `a<b>&"c'`
	body := "ends ]]> here\x00\x1b[31m\xff"
	r := Run{Scenarios: []Scenario{{
		Name:   name,
		Checks: []Check{{Name: name, Kind: "ping", Error: "first line\n" + body}},
	}}}
	root, doc := junitOf(t, r)
	for _, e := range validate(root, "") {
		t.Error(e)
	}
	suite := root.find("testsuite")[0]
	tc := suite.find("testcase")[0]
	if suite.attrs["name"] != name || tc.attrs["name"] != name || tc.attrs["classname"] != "hopcheck."+name {
		t.Errorf("names changed: suite %q, testcase %q, classname %q", suite.attrs["name"], tc.attrs["name"], tc.attrs["classname"])
	}
	f := tc.find("failure")[0]
	if f.attrs["message"] != "first line" {
		t.Errorf("message %q, want the error's first line", f.attrs["message"])
	}
	if want := "ends ]]> here\uFFFD\uFFFD[31m\uFFFD"; !strings.Contains(f.text, want) {
		t.Errorf("failure body %q lacks %q\n%s", f.text, want, doc)
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		ms   float64
		want string
	}{{0, "0.000"}, {0.4, "0.000"}, {1.5, "0.002"}, {84.2, "0.084"}, {1210.5, "1.210"}, {61000, "61.000"}}
	for _, tt := range tests {
		if got := seconds(tt.ms); got != tt.want {
			t.Errorf("seconds(%v) = %q, want %q", tt.ms, got, tt.want)
		}
	}
}
