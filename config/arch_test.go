package config

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBuildsWhereAnIntIs32Bits: the package compiles for GOARCH=386, where
// an int holds 32 bits. Every package of the module imports this one, so
// a bound too large for an int here (MaxOverridePageBytes's 1<<40, given
// to intIn) failed `GOARCH=386 go build ./...` as a whole.
func TestBuildsWhereAnIntIs32Bits(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package for GOARCH=386")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build with: %v", err)
	}
	cmd := exec.Command(goBin, "build", ".")
	cmd.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "GOARCH=386 go build: %s", out)
}

// TestMaxOverridePageBytesRange: the key takes 1 to 1 TiB, as before it was
// read as an int64.
func TestMaxOverridePageBytesRange(t *testing.T) {
	t.Parallel()
	c, err := Parse("x.cfg", []byte("[Security]\nMaxOverridePageBytes=1099511627776\n"), testTaskKeys)
	require.NoError(t, err)
	require.Equal(t, int64(1<<40), c.Security.MaxOverridePageBytes)
	for v, want := range map[string]string{
		"1099511627777": "1099511627777 is out of range (expected 1 to 1099511627776)",
		"0":             "0 is out of range (expected 1 to 1099511627776)",
		"lots":          `"lots" is not a whole number (expected 1 to 1099511627776)`,
	} {
		_, err := Parse("x.cfg", []byte("[Security]\nMaxOverridePageBytes="+v+"\n"), testTaskKeys)
		require.ErrorContains(t, err, "MaxOverridePageBytes: "+want)
	}
}
