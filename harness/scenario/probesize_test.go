package scenario

import (
	"errors"
	"strings"
	"testing"
)

func TestProbeSizeAndDF(t *testing.T) {
	s, err := Parse("t.yaml", []byte(base+`checks:
  - ping: {from: a, to: 10.0.0.2, size: 1500}
  - ping: {from: a, to: 10.0.0.2, size: 9000, df: false}
  - udp: {from: a, to: "10.0.0.2:53", listen: "b:53", size: 1400, df: true}
  - ping: {from: a, to: 10.0.0.2}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Checks
	if c[0].Ping.Size != 1500 || c[0].Ping.Fragment {
		t.Errorf("size 1500: %+v", c[0].Ping)
	}
	if c[1].Ping.Size != 9000 || !c[1].Ping.Fragment {
		t.Errorf("df: false: %+v", c[1].Ping)
	}
	if c[2].Conn.Size != 1400 || c[2].Conn.Fragment {
		t.Errorf("udp: %+v", c[2].Conn)
	}
	if c[3].Ping.Size != 0 || c[3].Ping.Fragment {
		t.Errorf("defaults: %+v", c[3].Ping)
	}
}

func TestProbeSizeErrors(t *testing.T) {
	_, err := Parse("t.yaml", []byte(base+`checks:
  - ping: {from: a, to: 10.0.0.2, size: 63}
  - ping: {from: a, to: 10.0.0.2, size: 70000}
  - ping: {from: a, to: 10.0.0.2, df: maybe}
  - tcp: {from: a, to: "10.0.0.2:80", size: 1500}
  - udp: {from: a, to: "10.0.0.2:53", size: "1500"}
`))
	want := []string{
		"t.yaml:12:41: checks[0].ping.size: 63 is out of range [64, 65535]",
		"t.yaml:13:41: checks[1].ping.size: 70000 is out of range [64, 65535]",
		"t.yaml:14:39: checks[2].ping.df: expected true or false, found \"maybe\"",
		"t.yaml:15:39: checks[3].tcp: unknown key \"size\"",
		"t.yaml:16:45: checks[4].udp.size: expected an integer, found \"1500\"",
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v is not an ErrorList", err)
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
