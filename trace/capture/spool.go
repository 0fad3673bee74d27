package capture

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
)

// A capture's frames reach hopcheck on one socket per interface, each
// queue in its own order, and a frame's kernel timestamp may even be a
// little older than its predecessor's on the same socket. Wireshark wants
// one file in time order. So frames are not written as they arrive: each
// interface keeps them in a spool, in memory up to a limit and then sorted
// and spilled to an unlinked temporary file as a run; Stop merges every
// run of every interface by time (a k-way merge), so a capture of any size
// costs bounded memory.

const (
	// spoolBudget is the memory all spools of one capture may hold before
	// spilling; each interface gets an equal share, at least spoolMinShare.
	spoolBudget   = 32 << 20
	spoolMinShare = 64 << 10
	// spoolReadBuf is the read buffer of each spilled run while merging.
	spoolReadBuf = 8 << 10
	// spoolHeader is a spilled frame's fixed part: time (ns), length on
	// the wire, bytes kept, outgoing, packet type.
	spoolHeader = 8 + 4 + 4 + 1 + 1
)

// spooled is one frame held by a spool; its bytes are at off in the
// spool's buffer.
type spooled struct {
	at       int64 // Unix nanoseconds
	off, n   int
	length   int
	out      bool
	pktType  uint8
	sequence int // arrival order, to keep equal times stable
}

// run is a sorted stretch of a spool's temporary file.
type run struct{ off, size int64 }

// spool holds the frames of one interface. Only its reader goroutine
// touches it until Stop, which merges after the readers have exited.
type spool struct {
	dir   string // where the temporary file goes
	limit int    // bytes in memory before a spill

	buf    []byte
	frames []spooled
	seq    int

	file *os.File // unlinked; nil until the first spill
	size int64
	runs []run
	err  error // the first error spilling; later frames are dropped
}

func newSpool(dir string, limit int) *spool {
	return &spool{dir: dir, limit: limit}
}

// add keeps a copy of one frame.
func (s *spool) add(data []byte, fi frameInfo) {
	if s.err != nil {
		return
	}
	s.frames = append(s.frames, spooled{
		at: fi.at.UnixNano(), off: len(s.buf), n: len(data), length: fi.length,
		out: fi.out, pktType: fi.pktType, sequence: s.seq,
	})
	s.seq++
	s.buf = append(s.buf, data...)
	if len(s.buf) >= s.limit {
		s.err = s.spill()
	}
}

// sortFrames orders the frames in memory by time, arrival order breaking
// ties.
func (s *spool) sortFrames() {
	slices.SortFunc(s.frames, func(a, b spooled) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.sequence, b.sequence))
	})
}

// spill writes the frames in memory to the temporary file as one sorted
// run and forgets them.
func (s *spool) spill() error {
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, ".hopcheck-capture-*")
		if err != nil {
			return fmt.Errorf("spill to disk: %w", err)
		}
		// Unlinked at once: nothing is left behind, whatever happens.
		os.Remove(f.Name())
		s.file = f
	}
	s.sortFrames()
	w := bufio.NewWriterSize(io.NewOffsetWriter(s.file, s.size), 64<<10)
	var hdr [spoolHeader]byte
	start := s.size
	for _, f := range s.frames {
		binary.LittleEndian.PutUint64(hdr[0:], uint64(f.at))
		binary.LittleEndian.PutUint32(hdr[8:], uint32(f.length))
		binary.LittleEndian.PutUint32(hdr[12:], uint32(f.n))
		hdr[16] = 0
		if f.out {
			hdr[16] = 1
		}
		hdr[17] = f.pktType
		w.Write(hdr[:])
		w.Write(s.buf[f.off : f.off+f.n])
		s.size += int64(spoolHeader + f.n)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("spill to disk: %w", err)
	}
	s.runs = append(s.runs, run{start, s.size - start})
	s.buf, s.frames = s.buf[:0], s.frames[:0]
	return nil
}

// close releases the temporary file.
func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

// mergedFrame is a frame as the merge hands it out; data is valid until
// the next call of next.
type mergedFrame struct {
	iface int
	seq   int // arrival order within the interface (in-memory frames only)
	at    int64
	info  frameInfo
	data  []byte
}

// source is one sorted run being merged: a spilled run or what is left in
// memory.
type source struct {
	iface int
	rank  int // a fixed order among sources, for ties

	// spilled
	r   *bufio.Reader
	buf []byte
	// in memory
	sp  *spool
	pos int

	cur mergedFrame
}

// advance loads the source's next frame; false at its end.
func (src *source) advance() (bool, error) {
	if src.sp != nil {
		if src.pos >= len(src.sp.frames) {
			return false, nil
		}
		f := src.sp.frames[src.pos]
		src.pos++
		src.cur = mergedFrame{iface: src.iface, seq: f.sequence, at: f.at, data: src.sp.buf[f.off : f.off+f.n],
			info: frameInfo{length: f.length, out: f.out, pktType: f.pktType}}
		return true, nil
	}
	var hdr [spoolHeader]byte
	if _, err := io.ReadFull(src.r, hdr[:]); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, err
	}
	n := int(binary.LittleEndian.Uint32(hdr[12:]))
	if cap(src.buf) < n {
		src.buf = make([]byte, n)
	}
	src.buf = src.buf[:n]
	if _, err := io.ReadFull(src.r, src.buf); err != nil {
		return false, err
	}
	src.cur = mergedFrame{iface: src.iface, at: int64(binary.LittleEndian.Uint64(hdr[0:])), data: src.buf,
		info: frameInfo{length: int(binary.LittleEndian.Uint32(hdr[8:])), out: hdr[16] == 1, pktType: hdr[17]}}
	return true, nil
}

// merger hands out the frames of many spools in time order: a binary
// heap of sources by their current frame, written out rather than through
// container/heap, whose interface calls were a fifth of writing a
// capture.
type merger []*source

// before reports whether source i's frame comes before source j's.
func (m merger) before(i, j int) bool {
	a, b := m[i], m[j]
	return a.cur.at < b.cur.at || a.cur.at == b.cur.at && a.rank < b.rank
}

// down moves source i down the heap to its place.
func (m merger) down(i int) {
	for {
		first := 2*i + 1
		if first >= len(m) {
			return
		}
		if second := first + 1; second < len(m) && m.before(second, first) {
			first = second
		}
		if !m.before(first, i) {
			return
		}
		m[i], m[first] = m[first], m[i]
		i = first
	}
}

// mergeSpools calls emit with every frame of spools in time order (ties
// by interface, then arrival). spools[i]'s frames are interface i's.
func mergeSpools(spools []*spool, emit func(mergedFrame) error) error {
	var m merger
	push := func(src *source) error {
		ok, err := src.advance()
		if err != nil {
			return fmt.Errorf("read spilled frames: %w", err)
		}
		if ok {
			m = append(m, src)
		}
		return nil
	}
	rank := 0
	for i, sp := range spools {
		for _, r := range sp.runs {
			src := &source{iface: i, rank: rank, r: bufio.NewReaderSize(io.NewSectionReader(sp.file, r.off, r.size), spoolReadBuf)}
			rank++
			if err := push(src); err != nil {
				return err
			}
		}
		sp.sortFrames()
		src := &source{iface: i, rank: rank, sp: sp}
		rank++
		if err := push(src); err != nil {
			return err
		}
	}
	for i := len(m)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	for len(m) > 0 {
		src := m[0]
		if err := emit(src.cur); err != nil {
			return err
		}
		ok, err := src.advance()
		if err != nil {
			return fmt.Errorf("read spilled frames: %w", err)
		}
		if !ok {
			m[0] = m[len(m)-1]
			m = m[:len(m)-1]
		}
		m.down(0)
	}
	return nil
}
