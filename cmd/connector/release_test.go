package main

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// makeIn runs make in the repository root with the given arguments.
func makeIn(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary with make: not in -short mode")
	}
	cmd := exec.Command("make", append([]string{"-C", repoRoot}, args...)...)
	// Run as a top-level make even when the tests themselves run under
	// `make test`: a parent make's MAKELEVEL and flags change what the child
	// prints ("make[1]: Entering directory") and how it runs.
	cmd.Env = withoutEnv(os.Environ(), "MAKELEVEL", "MAKEFLAGS", "MFLAGS")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "make %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// withoutEnv returns env without the variables named.
func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

// git runs git in the repository; ok is false outside a git checkout (a
// source tarball).
func git(args ...string) (string, bool) {
	out, err := exec.Command("git", append([]string{"-C", repoRoot}, args...)...).Output()
	return strings.TrimSpace(string(out)), err == nil
}

// `make build` stamps the git revision and the commit count.
func TestMakeBuildStampsVersion(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "connector")
	makeIn(t, "build", "BIN="+bin)
	out, err := exec.Command(bin, "-version").Output()
	require.NoError(t, err)
	line := strings.TrimSpace(string(out))
	rev, inGit := git("rev-parse", "--short=12", "HEAD")
	if !inGit {
		require.Contains(t, line, "(revision unknown, build 0, ", "outside git nothing is stamped")
		return
	}
	count, _ := git("rev-list", "--count", "HEAD")
	require.Regexp(t, fmt.Sprintf(`^connector \S+ \(revision %s(-dirty)?, build %s, go\S+ linux/%s\)$`, rev, count, runtime.GOARCH), line)
}

// `make dist` builds static linux/amd64 and linux/arm64 binaries, stamped,
// with their SHA-256 checksums.
func TestMakeDist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeIn(t, "dist", "DIST="+dir, "VERSION=9.8.7", "REVISION=0123456789ab", "BUILD=42")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"SHA256SUMS", "connector-9.8.7-linux-amd64", "connector-9.8.7-linux-arm64"}, names)

	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	require.Len(t, lines, 2)
	for _, l := range lines {
		sum, name, ok := strings.Cut(l, "  ")
		require.True(t, ok, "sha256sum format: %q", l)
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		got := sha256.Sum256(data)
		require.Equal(t, hex.EncodeToString(got[:]), sum, name)
	}

	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		path := filepath.Join(dir, "connector-9.8.7-linux-"+arch)
		f, err := elf.Open(path)
		require.NoError(t, err)
		require.Equal(t, machine, f.Machine, arch)
		for _, p := range f.Progs {
			require.NotEqual(t, elf.PT_INTERP, p.Type, "%s is statically linked (runs on any Linux)", arch)
		}
		require.NoError(t, f.Close())
		if arch == runtime.GOARCH {
			out, err := exec.Command(path, "-version").Output()
			require.NoError(t, err)
			require.Regexp(t, `^connector 9\.8\.7 \(revision 0123456789ab, build 42, go\S+ linux/`+arch+`\)\n$`, string(out))
		}
	}
}

// `make test` installs the C compiler -race needs before it builds anything
// (the README promises that Go and make are enough).
func TestMakeTestInstallsTheCompilerFirst(t *testing.T) {
	t.Parallel()
	out := makeIn(t, "-n", "test")
	first := strings.SplitN(strings.TrimSpace(out), "\n", 3)
	require.GreaterOrEqual(t, len(first), 2)
	require.Contains(t, first[0], "make: Entering directory")
	require.Regexp(t, `^\./scripts/ensure-deb\.sh gcc libc6-dev( |$)`, first[1])
	// Here they are installed: the script says nothing and needs no root.
	cmd := exec.Command(filepath.Join(repoRoot, "scripts", "ensure-deb.sh"), "gcc", "libc6-dev")
	out2, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out2)
	require.Empty(t, string(out2))
}

// Each step of `make bench` installs the Debian packages of the servers it
// starts before it starts them, as run.sh does for Redis and PostgreSQL:
// on a fresh machine with Go and make (README) nothing else installs them,
// and the cluster steps (a three-member etcd and PostgreSQL under every
// cluster) failed with "etcd is not installed" unless `make test` had
// been run first.
func TestBenchStepsInstallTheServersTheyStart(t *testing.T) {
	t.Parallel()
	for script, pkgs := range map[string][]string{
		"run.sh":          {"redis-server", "postgresql"},
		"crawl.sh":        {"postgresql-doc-15"},
		"mail.sh":         {"dovecot-core", "dovecot-imapd"},
		"clustercrash.sh": {"etcd-server", "postgresql"},
		"cluster.sh":      {"etcd-server", "postgresql"},
	} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "bench", script))
		require.NoError(t, err)
		var ensured []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if f[0] == "../scripts/ensure-deb.sh" {
				ensured = append(ensured, f[1:]...)
				continue
			}
			// What starts servers: the programs the step builds and runs.
			if strings.Contains(line, "go test ") || strings.Contains(line, "out/bin/") {
				break
			}
		}
		for _, p := range pkgs {
			if !slices.Contains(ensured, p) {
				t.Errorf("bench/%s runs what needs %s without ../scripts/ensure-deb.sh %s first", script, p, p)
			}
		}
	}
}
