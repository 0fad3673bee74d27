package trace

import "testing"

func TestTagRoundTrip(t *testing.T) {
	for _, tag := range []Tag{0, 1, 0xdeadbeefcafef00d} {
		b := tag.Append(nil)
		if len(b) != TagLen {
			t.Fatalf("len = %d, want %d", len(b), TagLen)
		}
		got, ok := FindTag(append(b, "rest of payload"...))
		if !ok || got != tag {
			t.Errorf("FindTag(Append(%v)) = %v, %v", tag, got, ok)
		}
	}
	for _, p := range [][]byte{nil, []byte("HOPC"), []byte("XOPC12345678"), []byte("hopc12345678")} {
		if _, ok := FindTag(p); ok {
			t.Errorf("FindTag(%q) found a tag", p)
		}
	}
}
