// Package loop is the closed-loop driver the in-process benchmarks share
// (cmd/inproc, cmd/peers): conc goroutines each call the operation again
// as soon as the previous call returns, until a deadline.
package loop

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrStop, returned by an operation, ends the loop early without being an
// error (a burn-down that has seen every job done, say).
var ErrStop = errors.New("loop: stop")

// Run calls fn(g, i) from conc goroutines (g the goroutine, i its call
// count) until dur has passed, fn returns ErrStop, or fn returns an
// error, which stops every goroutine and is returned. It returns the
// number of calls that succeeded and the time the loop took.
func Run(conc int, dur time.Duration, fn func(g, i int) error) (int64, time.Duration, error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	var stop atomic.Bool
	deadline := time.Now().Add(dur)
	start := time.Now()
	for g := range conc {
		wg.Go(func() {
			for i := 0; !stop.Load() && time.Now().Before(deadline); i++ {
				if err := fn(g, i); err != nil {
					if !errors.Is(err, ErrStop) {
						once.Do(func() { firstErr = err })
					}
					stop.Store(true)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load(), time.Since(start), firstErr
}
