// Package testport picks loopback TCP ports for the services that tests
// start as processes (etcd, PostgreSQL, Dovecot, connector nodes), which
// must be told their port before they start and keep it when they are
// restarted.
//
// A port that the kernel handed out for 127.0.0.1:0 lies in its ephemeral
// range, where it may be taken again, between the pick and the service's
// bind or while a killed service is down, by any process's outgoing
// connection or by another test's pick: under a loaded `make test` that
// happens. Pick chooses outside that range, at random, so that only other
// explicit picks can collide, and checks the port is free on 127.0.0.1.
package testport

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lowest is the smallest port Pick chooses: above the well-known and most
// registered services' ports.
const lowest = 10000

// rangeFile holds the kernel's ephemeral port range ("low high").
var rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// Pick returns a TCP port free on 127.0.0.1 a moment ago, outside the
// kernel's ephemeral range where the range leaves room below it, else one
// the kernel picks.
func Pick() (int, error) {
	if low := ephemeralLow(); low-lowest >= 1000 {
		for range 100 {
			p := lowest + rand.IntN(low-lowest)
			if free(p) {
				return p, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testport: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PickN returns n distinct ports as Pick does.
func PickN(n int) ([]int, error) {
	out := make([]int, 0, n)
	seen := map[int]bool{}
	for len(out) < n {
		p, err := Pick()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// free reports whether p can be listened on at 127.0.0.1 (a test
// replaces it).
var free = func(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ephemeralLow returns the low end of the kernel's ephemeral range, or 0.
func ephemeralLow() int {
	b, err := os.ReadFile(rangeFile)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return low
}

// Held listens on a port of 127.0.0.1 until the test ends, and returns
// it: a port that a test of a retry hands out as taken.
func Held(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testport: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// TakenFirst returns a PickN whose first answer has taken as its last
// port (then PickN's), and the number of calls made to it: a test of a
// retry on a taken port puts it in place of the PickN under test.
func TakenFirst(taken int) (pickN func(n int) ([]int, error), calls *int) {
	calls = new(int)
	return func(n int) ([]int, error) {
		*calls++
		ports, err := PickN(n)
		if *calls == 1 && err == nil {
			ports[n-1] = taken
		}
		return ports, err
	}, calls
}

// First is the first of pickN's ports: a Pick made of a PickN.
func First(pickN func(n int) ([]int, error)) func() (int, error) {
	return func() (int, error) {
		ports, err := pickN(1)
		if err != nil {
			return 0, err
		}
		return ports[0], nil
	}
}

// ErrTaken is the error of a start whose service exited because a port it
// was given was in use (its log said so: Taken).
var ErrTaken = errors.New("a port it was given is in use")

// Taken reports whether a service's log says it could not listen on a
// port in use.
func Taken(log []byte) bool {
	return bytes.Contains(bytes.ToLower(log), []byte("address already in use"))
}

// Retry calls start, which picks its ports afresh each time, until it
// returns anything but ErrTaken, three times at most: a port picked may
// be taken before the service binds it (another test's pick).
func Retry(start func() error) error {
	var err error
	for range 3 {
		if err = start(); !errors.Is(err, ErrTaken) {
			break
		}
	}
	return err
}
