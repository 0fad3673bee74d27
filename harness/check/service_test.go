package check_test

import (
	"net"
	"net/netip"

	"sync"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
)

// serveInB starts real services in namespace b of env, none of them
// hopcheck's: a TCP server on 10.77.0.2:8090 that greets and hangs up,
// and a UDP server on 10.77.0.2:8091 that answers "pong " and what it got.
// They stop when the test ends.
func serveInB(t *testing.T, env testEnv) {
	t.Helper()
	var (
		ln net.Listener
		pc net.PacketConn
	)
	err := netns.Do(env["b"], func() (err error) {
		if ln, err = net.Listen("tcp4", "10.77.0.2:8090"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", "10.77.0.2:8091")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("220 not hopcheck\r\n"))
			c.Close()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("pong "), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		pc.Close()
		wg.Wait()
	})
}

// TestRealServices: tcp and udp checks without listen talk to whatever
// serves at to, as on a real Docker or Podman host.
func TestRealServices(t *testing.T) {
	env := fixture(t)
	serveInB(t, env)
	svc := func(proto, to, payload, reply string) *scenario.ConnCheck {
		return &scenario.ConnCheck{Proto: proto, From: "a", To: netip.MustParseAddrPort(to),
			Timeout: time.Second, Payload: []byte(payload), Reply: reply}
	}
	runCases(t, env, []kindCase{
		{
			name:    "tcp service: the handshake is the answer",
			check:   scenario.Check{Kind: "tcp", Conn: svc("tcp", "10.77.0.2:8090", "", "")},
			passed:  true,
			reached: true,
			has:     []string{"tcp handshake with the service at 10.77.0.2:8090"},
			details: map[string]string{"outcome": "ok"},
		},
		{
			name:    "udp service answers the default payload",
			check:   scenario.Check{Kind: "udp", Conn: svc("udp", "10.77.0.2:8091", "", "")},
			passed:  true,
			reached: true,
			has:     []string{"udp answer from the service at 10.77.0.2:8091"},
		},
		{
			name:    "udp service answer contains the expected reply",
			check:   scenario.Check{Kind: "udp", Conn: svc("udp", "10.77.0.2:8091", "ping", "pong ping")},
			passed:  true,
			reached: true,
		},
		{
			name:    "udp service answer lacks the expected reply",
			check:   scenario.Check{Kind: "udp", Conn: svc("udp", "10.77.0.2:8091", "ping", "PONG")},
			has:     []string{`does not contain "PONG"`},
			details: map[string]string{"outcome": "bad-reply"},
		},
		{
			name:    "tcp: nothing serves there",
			check:   scenario.Check{Kind: "tcp", Conn: svc("tcp", "10.77.0.2:8092", "", "")},
			has:     []string{"was refused"},
			details: map[string]string{"outcome": "refused"},
		},
	})
}
