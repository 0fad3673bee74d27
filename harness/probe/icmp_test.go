package probe

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/trace"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// testID is the echo identifier of the pings these tests decode.
const testID = 0x4242

// marshal encodes an ICMP message, failing the test on error.
func marshal(t *testing.T, typ icmp.Type, code int, body icmp.MessageBody) []byte {
	t.Helper()
	b, err := (&icmp.Message{Type: typ, Code: code, Body: body}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ipv4Packet prepends an IPv4 header (with optLen bytes of options) to
// payload, as an ICMP error quotes the original datagram.
func ipv4Packet(t *testing.T, proto int, fragOff int, optLen int, payload []byte) []byte {
	t.Helper()
	h := ipv4.Header{
		Version:  4,
		Len:      20 + optLen,
		TotalLen: 20 + optLen + len(payload),
		TTL:      64,
		Protocol: proto,
		FragOff:  fragOff,
		Src:      net.IPv4(10, 0, 0, 2),
		Dst:      net.IPv4(192, 0, 2, 1),
		Options:  make([]byte, optLen),
	}
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(b, payload...)
}

// ipv6Packet prepends an IPv6 header to payload.
func ipv6Packet(next byte, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:6], uint16(len(payload)))
	b[6] = next
	b[7] = 64
	copy(b[8:24], netip.MustParseAddr("fd00::1").AsSlice())
	copy(b[24:40], netip.MustParseAddr("fd00::9").AsSlice())
	return append(b, payload...)
}

func mustEcho(t *testing.T, v6 bool, id, seq int, tag trace.Tag, size int) []byte {
	t.Helper()
	b, err := echoRequest(v6, id, seq, tag, size)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEchoRequest(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, size := range []int{0, trace.TagLen, 56, 1400} {
			b := mustEcho(t, v6, testID, 7, testTag, size)
			proto := protoICMP
			if v6 {
				proto = protoICMPv6
			}
			m, err := icmp.ParseMessage(proto, b)
			if err != nil {
				t.Fatal(err)
			}
			echo, ok := m.Body.(*icmp.Echo)
			if !ok || echo.ID != testID || echo.Seq != 7 {
				t.Fatalf("v6=%v size=%d: parsed %+v", v6, size, m.Body)
			}
			if want := max(size, trace.TagLen); len(echo.Data) != want {
				t.Errorf("v6=%v size=%d: %d data bytes, want %d", v6, size, len(echo.Data), want)
			}
			if got, ok := trace.FindTag(echo.Data); !ok || got != testTag {
				t.Errorf("v6=%v size=%d: payload does not start with the tag", v6, size)
			}
			if !v6 && icmpChecksum(b) != 0 {
				t.Errorf("size=%d: ICMPv4 checksum does not verify", size)
			}
		}
	}
}

// icmpChecksum returns the one's complement sum over b, 0 when b carries a
// correct checksum.
func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func TestParseEcho(t *testing.T) {
	ours4 := mustEcho(t, false, testID, 3, testTag, 56)
	ours6 := mustEcho(t, true, testID, 3, testTag, 56)
	theirs4 := mustEcho(t, false, testID, 3, testTag+1, 56)
	reply4 := func(id int, tag trace.Tag) []byte {
		data := tag.Append(nil)
		return marshal(t, ipv4.ICMPTypeEchoReply, 0, &icmp.Echo{ID: id, Seq: 3, Data: data})
	}
	tests := []struct {
		name      string
		v6        bool
		msg       []byte
		ok        bool // parseEcho recognises it
		reply     bool
		typ, code int
		belongs   bool // to (testID, testTag)
	}{
		{name: "v4 reply", msg: reply4(testID, testTag), ok: true, reply: true, belongs: true},
		{name: "v4 reply, same id, other tag", msg: reply4(testID, testTag+1), ok: true, reply: true},
		{name: "v4 reply, other id", msg: reply4(testID+1, testTag), ok: true, reply: true},
		{name: "v4 reply without payload", msg: marshal(t, ipv4.ICMPTypeEchoReply, 0, &icmp.Echo{ID: testID, Seq: 3}), ok: true, reply: true},
		{name: "v4 request is not an answer", msg: ours4},
		{name: "v4 host unreachable, full quote",
			msg: marshal(t, ipv4.ICMPTypeDestinationUnreachable, 1, &icmp.DstUnreach{Data: ipv4Packet(t, protoICMP, 0, 0, ours4)}),
			ok:  true, typ: 3, code: 1, belongs: true},
		{name: "v4 time exceeded, header with options",
			msg: marshal(t, ipv4.ICMPTypeTimeExceeded, 0, &icmp.TimeExceeded{Data: ipv4Packet(t, protoICMP, 0, 4, ours4)}),
			ok:  true, typ: 11, belongs: true},
		{name: "v4 error quoting only 8 bytes: id decides",
			msg: marshal(t, ipv4.ICMPTypeDestinationUnreachable, 1, &icmp.DstUnreach{Data: ipv4Packet(t, protoICMP, 0, 0, theirs4[:8])}),
			ok:  true, typ: 3, code: 1, belongs: true},
		{name: "v4 error quoting another ping's tag",
			msg: marshal(t, ipv4.ICMPTypeDestinationUnreachable, 1, &icmp.DstUnreach{Data: ipv4Packet(t, protoICMP, 0, 0, theirs4)}),
			ok:  true, typ: 3, code: 1},
		{name: "v4 error quoting UDP",
			msg: marshal(t, ipv4.ICMPTypeDestinationUnreachable, 3, &icmp.DstUnreach{Data: ipv4Packet(t, unix.IPPROTO_UDP, 0, 0, make([]byte, 8))})},
		{name: "v4 error quoting a later fragment",
			msg: marshal(t, ipv4.ICMPTypeDestinationUnreachable, 1, &icmp.DstUnreach{Data: ipv4Packet(t, protoICMP, 185, 0, ours4)})},
		{name: "v4 error quoting too little",
			msg: marshal(t, ipv4.ICMPTypeDestinationUnreachable, 1, &icmp.DstUnreach{Data: ipv4Packet(t, protoICMP, 0, 0, ours4[:4])})},
		{name: "v6 reply", v6: true,
			msg: marshal(t, ipv6.ICMPTypeEchoReply, 0, &icmp.Echo{ID: testID, Seq: 3, Data: testTag.Append(nil)}),
			ok:  true, reply: true, typ: 129, belongs: true},
		{name: "v6 address unreachable", v6: true,
			msg: marshal(t, ipv6.ICMPTypeDestinationUnreachable, 3, &icmp.DstUnreach{Data: ipv6Packet(protoICMPv6, ours6)}),
			ok:  true, typ: 1, code: 3, belongs: true},
		{name: "v6 packet too big", v6: true,
			msg: marshal(t, ipv6.ICMPTypePacketTooBig, 0, &icmp.PacketTooBig{MTU: 1280, Data: ipv6Packet(protoICMPv6, ours6)}),
			ok:  true, typ: 2, belongs: true},
		{name: "v6 error quoting a v4 packet", v6: true,
			msg: marshal(t, ipv6.ICMPTypeDestinationUnreachable, 3, &icmp.DstUnreach{Data: ipv4Packet(t, protoICMP, 0, 0, ours4)})},
		{name: "v6 error quoting UDP", v6: true,
			msg: marshal(t, ipv6.ICMPTypeDestinationUnreachable, 4, &icmp.DstUnreach{Data: ipv6Packet(unix.IPPROTO_UDP, make([]byte, 8))})},
		{name: "garbage", msg: []byte{3}},
		{name: "empty", msg: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := parseEcho(tt.msg, tt.v6)
			if ok != tt.ok {
				t.Fatalf("parseEcho ok = %v, want %v (%+v)", ok, tt.ok, ev)
			}
			if !ok {
				return
			}
			if ev.reply != tt.reply || ev.seq != 3 {
				t.Errorf("reply=%v seq=%d, want reply=%v seq=3", ev.reply, ev.seq, tt.reply)
			}
			if !tt.reply && (ev.typ != tt.typ || ev.code != tt.code) {
				t.Errorf("type/code %d/%d, want %d/%d", ev.typ, ev.code, tt.typ, tt.code)
			}
			if got := ev.belongsTo(testID, testTag); got != tt.belongs {
				t.Errorf("belongsTo = %v, want %v", got, tt.belongs)
			}
		})
	}
}

func TestICMPError(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.1")
	v6 := netip.MustParseAddr("fd00::1")
	tests := []struct {
		from      netip.Addr
		typ, code int
		text      string
		errno     syscall.Errno
		kind      error
	}{
		{v4, 3, 0, "destination network unreachable from 10.0.0.1 (icmp_seq 1)", unix.ENETUNREACH, ErrUnreachable},
		{v4, 3, 1, "destination host unreachable from 10.0.0.1 (icmp_seq 1)", unix.EHOSTUNREACH, ErrUnreachable},
		{v4, 3, 3, "destination port unreachable from 10.0.0.1 (icmp_seq 1)", unix.ECONNREFUSED, ErrRefused},
		{v4, 3, 4, "fragmentation needed from 10.0.0.1 (icmp_seq 1)", unix.EMSGSIZE, nil},
		{v4, 3, 13, "communication administratively prohibited from 10.0.0.1 (icmp_seq 1)", unix.EHOSTUNREACH, ErrUnreachable},
		{v4, 3, 99, "destination unreachable (code 99) from 10.0.0.1 (icmp_seq 1)", unix.EHOSTUNREACH, ErrUnreachable},
		{v4, 11, 0, "time to live exceeded from 10.0.0.1 (icmp_seq 1)", unix.EHOSTUNREACH, ErrUnreachable},
		{v4, 12, 0, "parameter problem from 10.0.0.1 (icmp_seq 1)", unix.EPROTO, nil},
		{v6, 1, 0, "destination unreachable: no route from fd00::1 (icmp_seq 1)", unix.ENETUNREACH, ErrUnreachable},
		{v6, 1, 1, "destination unreachable: administratively prohibited from fd00::1 (icmp_seq 1)", unix.EACCES, ErrFiltered},
		{v6, 1, 3, "destination unreachable: address unreachable from fd00::1 (icmp_seq 1)", unix.EHOSTUNREACH, ErrUnreachable},
		{v6, 1, 4, "destination unreachable: port unreachable from fd00::1 (icmp_seq 1)", unix.ECONNREFUSED, ErrRefused},
		{v6, 2, 0, "packet too big from fd00::1 (icmp_seq 1)", unix.EMSGSIZE, nil},
		{v6, 3, 0, "hop limit exceeded from fd00::1 (icmp_seq 1)", unix.EHOSTUNREACH, ErrUnreachable},
	}
	for _, tt := range tests {
		e := ICMPError{From: tt.from, Seq: 1, Type: tt.typ, Code: tt.code}
		if e.Error() != tt.text {
			t.Errorf("%d/%d from %s: %q, want %q", tt.typ, tt.code, tt.from, e.Error(), tt.text)
		}
		if e.Errno() != tt.errno || !errors.Is(e, tt.errno) {
			t.Errorf("%s: errno %v, want %v", tt.text, e.Errno(), tt.errno)
		}
		for _, s := range []error{ErrRefused, ErrUnreachable, ErrFiltered, ErrTimeout} {
			if want := s == tt.kind; errors.Is(e, s) != want {
				t.Errorf("%s: errors.Is(%v) = %v, want %v", tt.text, s, !want, want)
			}
		}
	}
}

func TestPingOptionsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   PingOptions
		want PingOptions
		bad  bool
	}{
		{name: "zero", want: PingOptions{Count: 1, Interval: DefaultPingInterval, Timeout: DefaultPingTimeout, PayloadSize: DefaultPayloadSize}},
		{name: "given values kept",
			in:   PingOptions{Count: 5, Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond, Tag: 9, PayloadSize: 100},
			want: PingOptions{Count: 5, Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond, Tag: 9, PayloadSize: 100}},
		{name: "payload raised to the tag",
			in:   PingOptions{PayloadSize: 4},
			want: PingOptions{Count: 1, Interval: DefaultPingInterval, Timeout: DefaultPingTimeout, PayloadSize: trace.TagLen}},
		{name: "count too high", in: PingOptions{Count: MaxPingCount + 1}, bad: true},
		{name: "negative count", in: PingOptions{Count: -1}, bad: true},
		{name: "interval too short", in: PingOptions{Interval: time.Millisecond}, bad: true},
		{name: "interval too long", in: PingOptions{Interval: time.Minute}, bad: true},
		{name: "negative timeout", in: PingOptions{Timeout: -time.Second}, bad: true},
		{name: "timeout too long", in: PingOptions{Timeout: time.Hour}, bad: true},
		{name: "payload too big", in: PingOptions{PayloadSize: MaxPayloadSize + 1}, bad: true},
	}
	for _, tt := range tests {
		got, err := tt.in.withDefaults()
		if (err != nil) != tt.bad {
			t.Errorf("%s: error %v, want error %v", tt.name, err, tt.bad)
			continue
		}
		if !tt.bad && got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestLoss(t *testing.T) {
	tests := []struct {
		sent, received int
		want           float64
	}{
		{0, 0, 1},
		{4, 0, 1},
		{4, 1, 0.75},
		{4, 4, 0},
	}
	for _, tt := range tests {
		if got := (PingResult{Sent: tt.sent, Received: tt.received}).Loss(); got != tt.want {
			t.Errorf("Loss(sent %d, received %d) = %v, want %v", tt.sent, tt.received, got, tt.want)
		}
	}
}

func FuzzParseEcho(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		req, err := echoRequest(v6, testID, 1, testTag, 56)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(req, v6)
	}
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 0x45}, false)
	f.Add([]byte{1, 3, 0, 0, 0, 0, 0, 0, 0x60}, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		ev, ok := parseEcho(b, v6)
		if ok {
			_ = ev.belongsTo(testID, testTag) // must not panic
		}
	})
}
