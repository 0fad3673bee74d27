package diagnose

import "github.com/hopcheck/hopcheck/harness/scenario"

// The cause codes a diagnosis names. They are the codes of the scenario
// format (a check's `cause:`), so they are defined there and only named
// here; a test keeps the two lists equal.
const (
	NoRoute            = scenario.CauseNoRoute
	NoReturnRoute      = scenario.CauseNoReturnRoute
	ForwardingDisabled = scenario.CauseForwardingDisabled
	NetfilterDrop      = scenario.CauseNetfilterDrop
	LinkDown           = scenario.CauseLinkDown
	NotBridged         = scenario.CauseNotBridged
	ARPFailed          = scenario.CauseARPFailed
	RPFilter           = scenario.CauseRPFilter
	NoListener         = scenario.CauseNoListener
	AddressMissing     = scenario.CauseAddressMissing
	LoopbackDown       = scenario.CauseLoopbackDown
	WrongMAC           = scenario.CauseWrongMAC
	VXLANMismatch      = scenario.CauseVXLANMismatch
	MTU                = scenario.CauseMTU
	NeighborTableFull  = scenario.CauseNeighborTableFull
	Unknown            = scenario.CauseUnknown
)

// Causes returns every cause code Diagnose can name, in the order of the
// format page.
func Causes() []string {
	return []string{
		NoRoute, NoReturnRoute, ForwardingDisabled, NetfilterDrop, LinkDown,
		NotBridged, ARPFailed, RPFilter, NoListener, AddressMissing,
		LoopbackDown, WrongMAC, VXLANMismatch, MTU, NeighborTableFull,
		Unknown,
	}
}
