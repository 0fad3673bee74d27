package capture

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// TestAppendPacketBlock: packet blocks hopcheck encodes itself read back
// through pcapgo's reader with their interface, time, lengths, data,
// flags and comment, whatever the padding their data and comment need.
func TestAppendPacketBlock(t *testing.T) {
	var file bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&file, interfaceBlock("a/veth0", ""), pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(interfaceBlock("b/veth1", "")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	type block struct {
		ifID    int
		data    string
		length  int
		flags   uint32
		comment string
	}
	blocks := []block{
		{0, "abcd", 4, frameFlags(frameInfo{out: true}), ""},
		{1, "abcde", 1500, frameFlags(frameInfo{pktType: 1}), "request"},
		{0, "abcdef", 6, 0, "a comment of 22 bytes."},
		{1, "abcdefg", 7, 0, ""},
	}
	for i, b := range blocks {
		file.Write(appendPacketBlock(nil, b.ifID, at.UnixNano()+int64(i), []byte(b.data), b.length, b.flags, b.comment))
	}

	r, err := pcapgo.NewNgReader(&file, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range blocks {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if string(data) != want.data || ci.Length != want.length || ci.InterfaceIndex != want.ifID ||
			!ci.Timestamp.Equal(at.Add(time.Duration(i))) {
			t.Errorf("block %d: %q length %d on %d at %v; want %q length %d on %d at %v",
				i, data, ci.Length, ci.InterfaceIndex, ci.Timestamp, want.data, want.length, want.ifID, at.Add(time.Duration(i)))
		}
		var flags uint32
		if opts.Flags != nil {
			flags = opts.Flags.ToUint32()
		}
		if flags != want.flags || strings.Join(opts.Comments, "|") != want.comment {
			t.Errorf("block %d: flags %#x comments %q; want %#x %q", i, flags, opts.Comments, want.flags, want.comment)
		}
	}
	if _, _, err := r.ReadPacketData(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last block: %v, want EOF", err)
	}
}
