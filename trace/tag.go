package trace

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// TagMagic starts the payload of every ICMP and UDP probe hopcheck sends.
// The payload crosses NAT untouched, so the tracer finds the probe's packets
// at every hop by it, whatever their addresses have become.
var TagMagic = [4]byte{'H', 'O', 'P', 'C'}

// TagLen is the encoded size of a Tag: magic, then the 64-bit probe ID.
const TagLen = 12

// Tag identifies one probe packet stream (one ping, one UDP round trip, one
// TCP connection). TCP probes carry no payload tag on their SYN; the tracer
// follows them by their initial sequence number instead, which NAT keeps.
type Tag uint64

// Append appends the wire form of t (magic, big-endian ID) to b.
func (t Tag) Append(b []byte) []byte {
	b = append(b, TagMagic[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(t))
}

// String formats t as 16 hex digits.
func (t Tag) String() string { return fmt.Sprintf("%016x", uint64(t)) }

// FindTag looks for a tag at the start of payload, and reports whether one
// was there.
func FindTag(payload []byte) (Tag, bool) {
	if len(payload) < TagLen || !bytes.Equal(payload[:4], TagMagic[:]) {
		return 0, false
	}
	return Tag(binary.BigEndian.Uint64(payload[4:TagLen])), true
}
