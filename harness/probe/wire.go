package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/hopcheck/hopcheck/trace"
)

// The TCP and UDP probes speak one small protocol with the Listener.
//
// A request is the trace tag in its wire form (so the tracer finds a UDP
// request by its payload, exactly like an echo request) followed by a
// 16-bit big-endian attempt number, which lets a UDP client that retried
// tell which datagram a reply answers:
//
//	"HOPC" | tag id (8 bytes) | attempt (2 bytes)
//
// The reply repeats the request, so it starts with the tag too, then a
// space, the source address and port the listener saw, and a newline:
//
//	request | ' ' | "10.0.0.2:43122" | '\n'
//
// A TCP client sends one request per connection; the listener reads exactly
// requestLen bytes, so no delimiter is needed in the binary part.
const requestLen = trace.TagLen + 2

// maxReplyLen bounds a reply: a request, a space, the longest text form of
// an address and port ("[ffff:...%zone]:65535", zone names are at most 15
// bytes), and the newline.
const maxReplyLen = requestLen + 1 + 64 + 1

// appendRequest appends the request for attempt of the probe tagged tag.
func appendRequest(b []byte, tag trace.Tag, attempt uint16) []byte {
	b = tag.Append(b)
	return binary.BigEndian.AppendUint16(b, attempt)
}

// padByte fills a request out to a probe's size: requests with it after
// requestLen bytes are padded, and their padding is not echoed.
const padByte = 0x50 // 'P'

// appendPadded appends the request for attempt, padded with padByte to
// size bytes when size is larger than a request.
func appendPadded(b []byte, tag trace.Tag, attempt uint16, size int) []byte {
	b = appendRequest(b, tag, attempt)
	for n := requestLen; n < size; n++ {
		b = append(b, padByte)
	}
	return b
}

// isPadded reports whether req is a request followed by padding only.
func isPadded(req []byte) bool {
	if len(req) <= requestLen {
		return false
	}
	for _, c := range req[requestLen:] {
		if c != padByte {
			return false
		}
	}
	return true
}

// parseRequest decodes a request; ok is false when b does not start with
// one.
func parseRequest(b []byte) (tag trace.Tag, attempt uint16, ok bool) {
	if len(b) < requestLen {
		return 0, 0, false
	}
	tag, ok = trace.FindTag(b)
	if !ok {
		return 0, 0, false
	}
	return tag, binary.BigEndian.Uint16(b[trace.TagLen:requestLen]), true
}

// appendReply appends the listener's reply to payload (the request as
// received) from a peer it saw as seen.
func appendReply(b, payload []byte, seen netip.AddrPort) []byte {
	b = append(b, payload...)
	b = append(b, ' ')
	b = seen.AppendTo(b)
	return append(b, '\n')
}

// parseReply decodes a listener's reply. The error wraps ErrBadReply when b
// is not one.
func parseReply(b []byte) (tag trace.Tag, attempt uint16, seen netip.AddrPort, err error) {
	tag, attempt, ok := parseRequest(b)
	if !ok {
		return 0, 0, netip.AddrPort{}, fmt.Errorf("reply does not start with a probe tag: %w", ErrBadReply)
	}
	rest, ok := bytes.CutSuffix(b[requestLen:], []byte{'\n'})
	if !ok {
		return 0, 0, netip.AddrPort{}, fmt.Errorf("reply is not terminated by a newline: %w", ErrBadReply)
	}
	// The address is the last field: a listener may echo a request longer
	// than ours, but never an address with a space in it.
	i := bytes.LastIndexByte(rest, ' ')
	if i < 0 {
		return 0, 0, netip.AddrPort{}, fmt.Errorf("reply names no address: %w", ErrBadReply)
	}
	seen, perr := netip.ParseAddrPort(string(rest[i+1:]))
	if perr != nil {
		return 0, 0, netip.AddrPort{}, fmt.Errorf("reply names no address: %w: %w", ErrBadReply, perr)
	}
	return tag, attempt, seen, nil
}
