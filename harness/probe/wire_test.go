package probe

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/hopcheck/hopcheck/trace"
)

// testTag is the probe tag of the packets these tests encode and decode.
const testTag = trace.Tag(0x1122334455667788)

func TestRequestRoundTrip(t *testing.T) {
	req := appendRequest(nil, testTag, 2)
	if len(req) != requestLen {
		t.Fatalf("request is %d bytes, want %d", len(req), requestLen)
	}
	// The tracer finds UDP probes by the tag at the start of the payload.
	if got, ok := trace.FindTag(req); !ok || got != testTag {
		t.Fatalf("request does not start with the tag: %x", req)
	}
	tag, attempt, ok := parseRequest(req)
	if !ok || tag != testTag || attempt != 2 {
		t.Errorf("parseRequest = %v, %d, %v; want %v, 2, true", tag, attempt, ok, testTag)
	}
	for _, bad := range [][]byte{nil, req[:requestLen-1], append([]byte("XOPC"), req[4:]...)} {
		if _, _, ok := parseRequest(bad); ok {
			t.Errorf("parseRequest(%x) accepted", bad)
		}
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, seen := range []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.2:43122"),
		netip.MustParseAddrPort("198.51.100.7:1"),
		netip.MustParseAddrPort("[fd00::2]:65535"),
		netip.MustParseAddrPort("[fe80::1%veth_1]:80"),
	} {
		// A tag whose bytes include a space and a newline must not confuse
		// the parser.
		tag := trace.Tag(0x0a20_0a20_0a20_0a20)
		req := appendRequest(nil, tag, 1)
		reply := appendReply(nil, req, seen)
		if len(reply) > maxReplyLen {
			t.Errorf("reply for %s is %d bytes, over maxReplyLen %d", seen, len(reply), maxReplyLen)
		}
		if got, ok := trace.FindTag(reply); !ok || got != tag {
			t.Errorf("reply for %s does not start with the tag", seen)
		}
		gotTag, attempt, gotSeen, err := parseReply(reply)
		if err != nil || gotTag != tag || attempt != 1 || gotSeen != seen {
			t.Errorf("parseReply = %v, %d, %v, %v; want %v, 1, %v, nil", gotTag, attempt, gotSeen, err, tag, seen)
		}
	}
	// A listener may echo more than our request; the address is the last
	// field.
	long := append(appendRequest(nil, testTag, 0), " extra words"...)
	if _, _, seen, err := parseReply(appendReply(nil, long, netip.MustParseAddrPort("10.0.0.9:9"))); err != nil || seen.String() != "10.0.0.9:9" {
		t.Errorf("reply to a longer request: %v, %v", seen, err)
	}
}

func TestParseReplyRejects(t *testing.T) {
	req := appendRequest(nil, testTag, 0)
	tests := map[string][]byte{
		"empty":             nil,
		"no tag":            []byte("SSH-2.0-OpenSSH_9.6\r\n"),
		"request only":      req,
		"no newline":        append(append([]byte{}, req...), " 10.0.0.1:5"...),
		"no address":        append(append([]byte{}, req...), '\n'),
		"not an address":    append(append([]byte{}, req...), " hello\n"...),
		"address sans port": append(append([]byte{}, req...), " 10.0.0.1\n"...),
	}
	for name, b := range tests {
		if _, _, _, err := parseReply(b); !errors.Is(err, ErrBadReply) {
			t.Errorf("%s: parseReply error %v, want ErrBadReply", name, err)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add(appendReply(nil, appendRequest(nil, testTag, 0), netip.MustParseAddrPort("10.0.0.2:1000")))
	f.Add([]byte("HOPC"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tag, attempt, seen, err := parseReply(b)
		if err != nil {
			return
		}
		// Whatever parses must encode back to a reply that parses the same.
		again := appendReply(nil, appendRequest(nil, tag, attempt), seen)
		tag2, attempt2, seen2, err := parseReply(again)
		if err != nil || tag2 != tag || attempt2 != attempt || seen2 != seen {
			t.Errorf("re-encoded reply %q parses as %v %d %v %v", again, tag2, attempt2, seen2, err)
		}
	})
}
