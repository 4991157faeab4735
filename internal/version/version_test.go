package version

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// stamp sets the linker-stamped values for one test, as -ldflags -X would.
func stamp(t *testing.T, v, r, b string) {
	old := [3]string{version, revision, build}
	version, revision, build = v, r, b
	t.Cleanup(func() { version, revision, build = old[0], old[1], old[2] })
}

func TestStamped(t *testing.T) {
	stamp(t, "v1.4.2", "0123456789ab-dirty", "421")
	require.Equal(t, "1.4.2", Version(), "a leading v is dropped")
	require.Equal(t, "0123456789ab-dirty", Revision())
	require.EqualValues(t, 421, Build())
	require.Equal(t, "connector 1.4.2 (revision 0123456789ab-dirty, build 421, "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+")", String())
}

func TestUnstamped(t *testing.T) {
	stamp(t, "", "", "")
	// A test binary records neither a module version nor VCS settings.
	require.Equal(t, Dev, Version())
	require.Equal(t, "unknown", Revision())
	require.Zero(t, Build())
}

func TestBuildThatIsNotANumberIsZero(t *testing.T) {
	for _, b := range []string{"abc", "-3", "1.5", "99999999999999999999999"} {
		stamp(t, "1.0.0", "r", b)
		require.Zero(t, Build(), b)
	}
}
