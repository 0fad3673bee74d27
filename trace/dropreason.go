package trace

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// dropReasonPrefix starts most enum skb_drop_reason names; the names shown
// to users go without it ("NETFILTER_DROP").
const dropReasonPrefix = "SKB_DROP_REASON_"

// dropReasons names the values of the running kernel's enum skb_drop_reason.
// The enum changes between releases (values are renumbered, reasons added),
// so the names come from the kernel's BTF, never from a table here.
type dropReasons map[uint32]string

// loadDropReasons reads enum skb_drop_reason from spec. A kernel without
// the enum (before 5.17) yields an error wrapping btf.ErrNotFound.
func loadDropReasons(spec *btf.Spec) (dropReasons, error) {
	var enum *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &enum); err != nil {
		return nil, fmt.Errorf("enum skb_drop_reason: %w", err)
	}
	names := make(dropReasons, len(enum.Values))
	for _, v := range enum.Values {
		if _, dup := names[uint32(v.Value)]; dup {
			continue // keep the first name for a value, as the kernel's own table does
		}
		names[uint32(v.Value)] = strings.TrimPrefix(v.Name, dropReasonPrefix)
	}
	return names, nil
}

// name returns the name of reason, or "UNKNOWN(n)" for a value the enum
// does not have (subsystem reasons carry their subsystem in the high bits).
func (d dropReasons) name(reason uint32) string {
	if n, ok := d[reason]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN(%d)", reason)
}
