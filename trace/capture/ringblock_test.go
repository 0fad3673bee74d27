package capture

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeBlock writes into block b of r a header numbered seq with status
// and one frame per payload, laid out as the kernel lays out TPACKET_V3
// blocks.
func fakeBlock(r *packetRing, b int, seq uint64, status uint32, payloads ...string) {
	ne := binary.NativeEndian
	blk := r.block(b)
	clear(blk)
	ne.PutUint32(blk[blockStatusOff:], status)
	ne.PutUint32(blk[blockNumPktsOff:], uint32(len(payloads)))
	ne.PutUint32(blk[blockFirstFrameOff:], ringBlockHeader)
	ne.PutUint64(blk[blockSeqOff:], seq)
	const mac = 80
	off := ringBlockHeader
	for i, p := range payloads {
		h := blk[off:]
		size := (mac + len(p) + 15) &^ 15
		if i < len(payloads)-1 {
			ne.PutUint32(h[frameNextOff:], uint32(size))
		}
		ne.PutUint32(h[frameSnaplenOff:], uint32(len(p)))
		ne.PutUint32(h[frameLenOff:], uint32(len(p)))
		ne.PutUint16(h[frameMacOff:], mac)
		ne.PutUint32(h[addrIfindexOff:], 2)
		copy(h[mac:], p)
		off += size
	}
}

// readAll returns the payloads of the frames fn is called with.
func readAll(read func(func(ringFrame)) int) ([]string, int) {
	var got []string
	n := read(func(f ringFrame) { got = append(got, string(f.data)) })
	return got, n
}

// TestReadRest: after a halt, the frames of the blocks handed over and of
// the block the kernel was filling are read once; a block the kernel has
// not opened since it was read, or has opened again empty, adds nothing.
func TestReadRest(t *testing.T) {
	tests := []struct {
		name string
		// lastSeq is the block read last, and the ring's next is block 0.
		lastSeq uint64
		fill    func(r *packetRing)
		want    string
	}{
		{
			name:    "a block handed over, then the open one",
			lastSeq: 4,
			fill: func(r *packetRing) {
				fakeBlock(r, 0, 5, unix.TP_STATUS_USER, "a", "b")
				fakeBlock(r, 1, 6, unix.TP_STATUS_KERNEL, "c")
				fakeBlock(r, 2, 3, unix.TP_STATUS_KERNEL, "old")
			},
			want: "[a b c] 3",
		},
		{
			name:    "no block opened since the last read",
			lastSeq: 4,
			fill: func(r *packetRing) {
				fakeBlock(r, 0, 2, unix.TP_STATUS_KERNEL, "old")
				fakeBlock(r, 1, 3, unix.TP_STATUS_KERNEL, "old")
				fakeBlock(r, 2, 4, unix.TP_STATUS_KERNEL, "old")
			},
			want: "[] 0",
		},
		{
			name:    "the ring was full and read; the retire timer opened its first block again",
			lastSeq: 7,
			fill: func(r *packetRing) {
				fakeBlock(r, 0, 8, unix.TP_STATUS_KERNEL)
				fakeBlock(r, 1, 6, unix.TP_STATUS_KERNEL, "read")
				fakeBlock(r, 2, 7, unix.TP_STATUS_KERNEL, "read")
			},
			want: "[] 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &packetRing{mem: make([]byte, 3*ringBlockSize), blocks: 3, lastSeq: tt.lastSeq}
			tt.fill(r)
			got, n := readAll(r.readRest)
			if s := fmt.Sprint(got, " ", n); s != tt.want {
				t.Errorf("readRest read %s, want %s", s, tt.want)
			}
		})
	}
}
