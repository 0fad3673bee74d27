package trace

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/bpf"
)

// encodeRecord lays out ev the way the kernel does: struct event, packed
// without implicit padding, little-endian.
func encodeRecord(t *testing.T, ev bpf.TraceEvent) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, ev); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRecordSizeMatchesC(t *testing.T) {
	// struct event in bpf/trace.c: 3 u64, 3 u32, u16, 3 u8, 7 pad, 128 data.
	const cSize = 3*8 + 3*4 + 2 + 3 + 7 + 128
	if recordSize != cSize {
		t.Fatalf("record size %d, struct event is %d bytes", recordSize, cSize)
	}
	if n := len(encodeRecord(t, bpf.TraceEvent{})); n != recordSize {
		t.Fatalf("binary encoding of TraceEvent is %d bytes, want %d (implicit padding?)", n, recordSize)
	}
}

func TestParseRecord(t *testing.T) {
	frame := append(bytes.Repeat([]byte{0xaa}, 42), Tag(7).Append(nil)...)
	var data [128]byte
	copy(data[:], frame)

	for _, tc := range []struct {
		name     string
		in       bpf.TraceEvent
		want     Event
		location uint64
		wantErr  bool
	}{{
		name: "packet",
		in: bpf.TraceEvent{TimeNs: 1500, Netns: 4096, Ifindex: 2, Len: 54,
			CapLen: uint16(len(frame)), Kind: 1, Dir: 2, Layer: 1, Data: data},
		want: Event{Kind: KindPacket, Time: 1500 * time.Nanosecond, Netns: 4096, Ifindex: 2,
			Dir: Egress, Len: 54, Layer: LayerEthernet, Data: frame},
	}, {
		name: "drop",
		in: bpf.TraceEvent{TimeNs: 9, Netns: 4097, Location: 0xffffffff81f8132c, Ifindex: 3,
			Len: 40, Reason: 12, CapLen: 20, Kind: 2, Layer: 2, Data: data},
		want: Event{Kind: KindDrop, Time: 9, Netns: 4097, Ifindex: 3, Len: 40,
			Layer: LayerIPv4, Reason: 12, Data: frame[:20]},
		location: 0xffffffff81f8132c,
	}, {
		name: "empty capture",
		in:   bpf.TraceEvent{Kind: 1, Dir: 1, Layer: 1},
		want: Event{Kind: KindPacket, Dir: Ingress, Layer: LayerEthernet},
	}, {
		name: "unknown kind", in: bpf.TraceEvent{Kind: 3, Dir: 1, Layer: 1}, wantErr: true,
	}, {
		name: "packet without direction", in: bpf.TraceEvent{Kind: 1, Layer: 1}, wantErr: true,
	}, {
		name: "unknown layer", in: bpf.TraceEvent{Kind: 2, Layer: 4}, wantErr: true,
	}, {
		name: "capture longer than data", in: bpf.TraceEvent{Kind: 1, Dir: 1, Layer: 1, CapLen: 129}, wantErr: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			raw := encodeRecord(t, tc.in)
			got, loc, err := parseRecord(raw)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseRecord succeeded: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if loc != tc.location {
				t.Errorf("location = %#x, want %#x", loc, tc.location)
			}
			if !bytes.Equal(got.Data, tc.want.Data) {
				t.Errorf("Data = %x, want %x", got.Data, tc.want.Data)
			}
			// Data must not alias the record buffer, which the reader reuses.
			if len(got.Data) > 0 {
				before := got.Data[0]
				raw[offData] ^= 0xff
				if got.Data[0] != before {
					t.Errorf("Data aliases the record buffer")
				}
			}
			got.Data, tc.want.Data = nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("event = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseRecordShort(t *testing.T) {
	if _, _, err := parseRecord(make([]byte, recordSize-1)); err == nil {
		t.Fatal("parseRecord accepted a short record")
	}
}
