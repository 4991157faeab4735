// Package version says which build of the connector is running: its
// version, the source revision it was built from, and a build number.
//
// `make build` and `make dist` stamp the three values with the linker:
//
//	go build -ldflags "-X github.com/connectorhq/connector/internal/version.version=1.2.0 \
//	    -X github.com/connectorhq/connector/internal/version.revision=0123456789ab \
//	    -X github.com/connectorhq/connector/internal/version.build=421"
//
// A binary built without them (go build, go run, go install, tests) falls
// back on what the Go toolchain recorded: the module version, and the VCS
// revision when it was built inside a git checkout. Nothing else in the
// project computes a version; GetVersion, GetStatus, -version and the
// start-up log line all read this package.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Stamped by the linker (-X); empty when the build did not stamp them.
var (
	version  string
	revision string
	build    string
)

// Dev is the version of a build that was not stamped and whose module
// version the toolchain does not know (a plain `go build` in a checkout).
const Dev = "0.0.0-dev"

// Version is the release version, without a leading "v": the stamped
// value, else the module version recorded in the binary, else Dev.
func Version() string {
	if version != "" {
		return strings.TrimPrefix(version, "v")
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return Dev
}

// Revision is the source revision: the stamped value (make uses the
// abbreviated git commit, with "-dirty" when the tree had uncommitted
// changes), else the VCS revision the toolchain recorded (12 hex digits,
// "-dirty" likewise), else "unknown".
func Revision() string {
	if revision != "" {
		return revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	return "unknown"
}

// Build is the build number: a count that grows with every commit (make
// stamps the number of commits in the revision's history), so that of two
// builds of one branch the later has the larger number. 0 when the build
// was not stamped, or stamped with something that is not a number.
func Build() uint64 {
	n, err := strconv.ParseUint(build, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// String is the one line `connector -version` prints: product, version,
// revision, build number, Go version and platform.
func String() string {
	return fmt.Sprintf("connector %s (revision %s, build %d, %s %s/%s)",
		Version(), Revision(), Build(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
