// Command floors measures the two in-process references the queue's
// figures are normalised by, and prints them as result JSON:
//
//   - the actor floor: protoactor-go spawn → one request → stop per task,
//     from -conc goroutines (what one action costs the actor layer at
//     least), and RequestFuture round trips to one long-lived actor (what
//     one request to the QueueManager costs at least);
//   - the storage floor: 4 KiB write + fdatasync per operation in -dir,
//     appending to a new file and overwriting a preallocated one.
//
// Usage: floors [-what actor,fsync] [-dir DIR] [-dur 2s] [-conc 16]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/sys/unix"

	"github.com/connectorhq/connector/bench/internal/result"
)

func main() {
	what := flag.String("what", "actor,fsync", "comma-separated: actor, fsync")
	dir := flag.String("dir", "", "folder on the disk whose fsync rate is measured (default: a new temporary folder)")
	dur := flag.Duration("dur", 2*time.Second, "duration of each measurement")
	conc := flag.Int("conc", 16, "goroutines in the actor measurements")
	flag.Parse()
	out := result.New("floors", "")
	out.Info["gomaxprocs"] = fmt.Sprint(runtime.GOMAXPROCS(0))
	for _, w := range strings.Split(*what, ",") {
		var err error
		switch strings.TrimSpace(w) {
		case "actor":
			err = actorFloor(out, *dur, *conc)
		case "fsync":
			err = fsyncFloor(out, *dir, *dur)
		default:
			err = fmt.Errorf("unknown measurement %q", w)
		}
		if err != nil {
			result.Fatal("floors", err)
		}
	}
	if err := out.Write(os.Stdout); err != nil {
		result.Fatal("floors", err)
	}
}

type ping struct{}

// task is the smallest task-like actor: it answers one request and counts
// its own stop.
type task struct{ stopped *atomic.Int64 }

func (t *task) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *ping:
		ctx.Respond(ctx.Message())
	case *actor.Stopped:
		t.stopped.Add(1)
	}
}

func actorFloor(out *result.Output, dur time.Duration, conc int) error {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	defer sys.Shutdown()
	var stopped atomic.Int64
	props := actor.PropsFromProducer(func() actor.Actor { return &task{stopped: &stopped} })
	msg := &ping{}

	// (a) spawn → request → stop, closed loop from conc goroutines; the
	// clock stops when every spawned actor has stopped.
	var spawned atomic.Int64
	var failed atomic.Int64
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				pid := sys.Root.Spawn(props)
				if _, err := sys.Root.RequestFuture(pid, msg, 5*time.Second).Result(); err != nil {
					failed.Add(1)
				}
				sys.Root.Stop(pid)
				spawned.Add(1)
			}
		})
	}
	wg.Wait()
	for stopped.Load() < spawned.Load() {
		if time.Since(deadline) > 30*time.Second {
			return errors.New("floors: spawned actors did not stop within 30 s")
		}
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start).Seconds()
	if failed.Load() > 0 {
		return fmt.Errorf("floors: %d requests to fresh actors failed", failed.Load())
	}
	out.Add("actor_spawn_req_stop_per_s", float64(spawned.Load())/el, "/s")

	// (b) RequestFuture round trips to one long-lived actor.
	pid := sys.Root.Spawn(props)
	var n atomic.Int64
	deadline = time.Now().Add(dur)
	start = time.Now()
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := sys.Root.RequestFuture(pid, msg, 5*time.Second).Result(); err != nil {
					failed.Add(1)
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	el = time.Since(start).Seconds()
	if failed.Load() > 0 {
		return fmt.Errorf("floors: %d round trips failed", failed.Load())
	}
	out.Add("actor_requestfuture_per_s", float64(n.Load())/el, "/s")
	return nil
}

func fsyncFloor(out *result.Output, dir string, dur time.Duration) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "floors-fsync-")
		if err != nil {
			return fmt.Errorf("floors: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("floors: %w", err)
	}
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	// Append: every write grows the file, so fdatasync also writes the
	// size change.
	app, err := syncLoop(filepath.Join(dir, "fsync-append"), block, dur, false)
	if err != nil {
		return err
	}
	// Overwrite: 4 KiB blocks cycling over a preallocated, synced 1 MiB
	// file (what a database that reuses pages pays).
	ovr, err := syncLoop(filepath.Join(dir, "fsync-overwrite"), block, dur, true)
	if err != nil {
		return err
	}
	out.Add("fsync_append_per_s", app, "/s")
	out.Add("fsync_overwrite_per_s", ovr, "/s")
	out.Add("fsync_floor_per_s", max(app, ovr), "/s")
	out.Info["fsync_dir"] = dir
	return nil
}

func syncLoop(path string, block []byte, dur time.Duration, overwrite bool) (float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return 0, fmt.Errorf("floors: %w", err)
	}
	defer os.Remove(path)
	defer f.Close()
	const region = 1 << 20
	if overwrite {
		if _, err := f.Write(make([]byte, region)); err != nil {
			return 0, fmt.Errorf("floors: preallocate %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("floors: sync %s: %w", path, err)
		}
	}
	fd := int(f.Fd())
	var off int64
	n := 0
	start := time.Now()
	for time.Since(start) < dur {
		if overwrite {
			if _, err := f.WriteAt(block, off%region); err != nil {
				return 0, fmt.Errorf("floors: write %s: %w", path, err)
			}
		} else if _, err := f.Write(block); err != nil {
			return 0, fmt.Errorf("floors: write %s: %w", path, err)
		}
		off += int64(len(block))
		if err := unix.Fdatasync(fd); err != nil {
			return 0, fmt.Errorf("floors: fdatasync %s: %w", path, err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
