package trace

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"github.com/hopcheck/hopcheck/bpf"
)

// The ring-buffer record is bpf.TraceEvent, the mirror bpf2go generated of
// struct event in bpf/trace.c. Offsets come from the generated type, so a
// change to the C struct changes them here at the next generate. The
// objects are compiled for bpfel, so records are little-endian.
const (
	recordSize    = int(unsafe.Sizeof(bpf.TraceEvent{}))
	offTime       = unsafe.Offsetof(bpf.TraceEvent{}.TimeNs)
	offNetns      = unsafe.Offsetof(bpf.TraceEvent{}.Netns)
	offLocation   = unsafe.Offsetof(bpf.TraceEvent{}.Location)
	offIfindex    = unsafe.Offsetof(bpf.TraceEvent{}.Ifindex)
	offLen        = unsafe.Offsetof(bpf.TraceEvent{}.Len)
	offReason     = unsafe.Offsetof(bpf.TraceEvent{}.Reason)
	offCapLen     = unsafe.Offsetof(bpf.TraceEvent{}.CapLen)
	offKind       = unsafe.Offsetof(bpf.TraceEvent{}.Kind)
	offDir        = unsafe.Offsetof(bpf.TraceEvent{}.Dir)
	offLayer      = unsafe.Offsetof(bpf.TraceEvent{}.Layer)
	offData       = unsafe.Offsetof(bpf.TraceEvent{}.Data)
	recordSnapLen = len(bpf.TraceEvent{}.Data)
)

// parseRecord decodes one ring-buffer record into an Event with everything
// the kernel knows: the names (NS, If, ReasonName, Location) are left for
// the caller to resolve. location is the kernel address a drop was freed at.
// The Event's Data is a copy, so raw may be reused.
func parseRecord(raw []byte) (ev Event, location uint64, err error) {
	if len(raw) < recordSize {
		return Event{}, 0, fmt.Errorf("trace record: %d bytes, want %d", len(raw), recordSize)
	}
	u16 := func(off uintptr) uint16 { return binary.LittleEndian.Uint16(raw[off:]) }
	u32 := func(off uintptr) uint32 { return binary.LittleEndian.Uint32(raw[off:]) }
	u64 := func(off uintptr) uint64 { return binary.LittleEndian.Uint64(raw[off:]) }

	ev = Event{
		Kind:    EventKind(raw[offKind]),
		Time:    time.Duration(u64(offTime)),
		Netns:   u64(offNetns),
		Ifindex: u32(offIfindex),
		Dir:     Direction(raw[offDir]),
		Len:     u32(offLen),
		Layer:   Layer(raw[offLayer]),
		Reason:  u32(offReason),
	}
	switch ev.Kind {
	case KindPacket:
		if ev.Dir != Ingress && ev.Dir != Egress {
			return Event{}, 0, fmt.Errorf("trace record: packet with direction %d", ev.Dir)
		}
	case KindDrop:
		location = u64(offLocation)
	default:
		return Event{}, 0, fmt.Errorf("trace record: unknown kind %d", ev.Kind)
	}
	if ev.Layer < LayerEthernet || ev.Layer > LayerIPv6 {
		return Event{}, 0, fmt.Errorf("trace record: unknown layer %d", ev.Layer)
	}
	n := int(u16(offCapLen))
	if n > recordSnapLen {
		return Event{}, 0, fmt.Errorf("trace record: %d captured bytes, at most %d fit", n, recordSnapLen)
	}
	ev.Data = append([]byte(nil), raw[offData:offData+uintptr(n)]...)
	return ev, location, nil
}
