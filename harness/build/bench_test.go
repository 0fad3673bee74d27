package build_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/plan/plantest"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// bridgeOf returns n containers on one bridge of the host, each with a
// default route through the bridge: the benchmark's topology.
func bridgeOf(n int) *scenario.Scenario {
	b := plantest.New(fmt.Sprintf("bridge-%d", n)).NS("host").
		Iface("host", "br0", scenario.TypeBridge, plantest.Addrs("10.0.0.1/16"))
	for i := range n {
		c := fmt.Sprintf("c%d", i)
		b.NS(c).
			Iface("host", "v"+c, "", plantest.Master("br0")).
			Iface(c, "eth0", "", plantest.Addrs(fmt.Sprintf("10.0.%d.%d/16", (i+2)/250, (i+2)%250+1))).
			Route(c, "default via 10.0.0.1").
			Link(c+"/eth0", "host/v"+c)
	}
	return b.Scenario()
}

// BenchmarkUpDown builds and removes bridge topologies; ms/container is
// the figure the project's goals are stated in.
func BenchmarkUpDown(b *testing.B) {
	privtest.Require(b)
	for _, n := range []int{10, 100} {
		sc := bridgeOf(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				topo, err := build.Up(context.Background(), sc, build.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := topo.Down(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*n), "ms/container")
		})
	}
}
