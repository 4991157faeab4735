package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var deployDir = filepath.Join(repoRoot, "deploy")

// systemdAnalyze runs systemd-analyze (Debian package systemd, which make
// test installs); a test needing it fails without it.
func systemdAnalyze(t *testing.T, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	require.NoError(t, err, "systemd-analyze is missing: install the Debian package systemd (make test does)")
	out, err := exec.Command(path, args...).CombinedOutput()
	return string(out), err
}

// unitForTest copies deploy/connector.service into a temporary folder with
// ExecStart's program replaced by an executable that exists here (this test
// binary: systemd-analyze verify checks that the program is executable).
func unitForTest(t *testing.T) string {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join(deployDir, "connector.service"))
	require.NoError(t, err)
	const installed = "ExecStart=/usr/local/bin/connector -config /etc/connector/connector.cfg"
	require.Contains(t, string(unit), installed+"\n", "docs/deploy.md installs the binary and configuration there")
	self, err := os.Executable()
	require.NoError(t, err)
	text := strings.Replace(string(unit), "ExecStart=/usr/local/bin/connector", "ExecStart="+self, 1)
	path := filepath.Join(t.TempDir(), "connector.service")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// The unit passes systemd-analyze verify with nothing to say, and its
// hardening rates OK (exposure at most 2.0 of 10) in systemd-analyze
// security.
func TestSystemdUnitVerifies(t *testing.T) {
	t.Parallel()
	path := unitForTest(t)
	out, err := systemdAnalyze(t, "verify", path)
	require.NoError(t, err, out)
	require.Empty(t, strings.TrimSpace(out), "systemd-analyze verify warns")

	out, err = systemdAnalyze(t, "security", "--offline=true", "--threshold=20", path)
	require.NoError(t, err, "exposure above 2.0:\n%s", out)
	m := regexp.MustCompile(`Overall exposure level for connector\.service: (\d+\.\d)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	t.Logf("systemd-analyze security: exposure %s", m[1])

	// The settings docs/deploy.md promises.
	unit, err := os.ReadFile(filepath.Join(deployDir, "connector.service"))
	require.NoError(t, err)
	for _, want := range []string{"User=connector", "ProtectSystem=strict", "ReadWritePaths=/var/lib/connector",
		"StateDirectory=connector", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "KillSignal=SIGTERM"} {
		require.Contains(t, string(unit), want)
	}
}

// A mistake in the unit is caught: the test above can fail.
func TestSystemdVerifyCatchesAMistake(t *testing.T) {
	t.Parallel()
	path := unitForTest(t)
	unit, err := os.ReadFile(path)
	require.NoError(t, err)
	bad := strings.Replace(string(unit), "ProtectSystem=strict", "ProtectSystem=strict\nProtectSytem=full", 1)
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
	out, _ := systemdAnalyze(t, "verify", path)
	require.Contains(t, out, "Unknown key")
}

// The image is built from Debian packages only: a Debian base, packages
// from apt, and the release binary make dist builds; nothing downloaded
// otherwise. What it copies exists, and .dockerignore lets it through.
func TestContainerfileUsesDebianPackagesOnly(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join(deployDir, "Containerfile"))
	require.NoError(t, err)
	defer f.Close()
	var froms, copies []string
	var run strings.Builder
	sc := bufio.NewScanner(f)
	inRun := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		fields := strings.Fields(line)
		switch {
		case inRun:
			run.WriteString(line + "\n")
		case fields[0] == "FROM":
			froms = append(froms, fields[1])
		case fields[0] == "COPY", fields[0] == "ADD":
			require.Equal(t, "COPY", fields[0], "ADD may fetch URLs")
			copies = append(copies, fields[1])
		case fields[0] == "RUN":
			run.WriteString(line + "\n")
			inRun = true
		}
		inRun = inRun && strings.HasSuffix(line, `\`)
	}
	require.NoError(t, sc.Err())
	require.Equal(t, []string{"debian:bookworm-slim"}, froms)
	for _, banned := range []string{"curl", "wget", "pip", "npm", "go install", "go build", "| sh", "|sh"} {
		require.NotContains(t, run.String(), banned)
	}
	require.Contains(t, run.String(), "apt-get install -y --no-install-recommends")
	require.Equal(t, []string{"dist/connector-${VERSION}-linux-${TARGETARCH}", "deploy/container.cfg"}, copies)
	_, err = os.Stat(filepath.Join(deployDir, "container.cfg"))
	require.NoError(t, err)
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	require.Equal(t, "*\n!dist/\n!deploy/\n", strings.Join(nonComment(string(ignore)), ""))
}

func nonComment(text string) []string {
	var out []string
	for _, l := range strings.SplitAfter(text, "\n") {
		if !strings.HasPrefix(l, "#") && strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// containerBuilder returns a container builder that can build here: podman
// or buildah, or docker with a reachable engine; "" and why not otherwise.
func containerBuilder() (string, string) {
	var why []string
	for _, name := range []string{"podman", "buildah", "docker"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		probe := []string{"info"}
		if name == "buildah" {
			probe = []string{"version"}
		}
		if out, err := exec.Command(path, probe...).CombinedOutput(); err != nil {
			why = append(why, fmt.Sprintf("%s has no engine (%s)", name, lastLine(string(out))))
			continue
		}
		return name, ""
	}
	if len(why) == 0 {
		return "", "none of podman, buildah and docker is installed"
	}
	return "", strings.Join(why, "; ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// make image builds the image where a container builder can run, and the
// image's binary runs: -version, and the configuration it ships loads.
func TestContainerImageBuilds(t *testing.T) {
	t.Parallel()
	builder, why := containerBuilder()
	if builder == "" {
		t.Skipf("no container builder can run here, so the image is not built: %s", why)
	}
	const image, ver = "connector-test", "0.0.0-imagetest"
	makeIn(t, "image", "CONTAINER="+builder, "IMAGE="+image, "VERSION="+ver, "REVISION=0123456789ab", "BUILD=7")
	run := builder
	if builder == "buildah" {
		t.Skip("buildah built the image; running it needs podman or docker")
	}
	t.Cleanup(func() { _ = exec.Command(run, "rmi", "-f", image+":"+ver).Run() })
	out, err := exec.Command(run, "run", "--rm", image+":"+ver, "-version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Regexp(t, `^connector 0\.0\.0-imagetest \(revision 0123456789ab, build 7, `, string(out))
	out, err = exec.Command(run, "run", "--rm", "--entrypoint", "id", image+":"+ver, "-un").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "connector", strings.TrimSpace(string(out)), "the image runs as its own user")
}

// The configurations deploy/ ships (the systemd unit's, the image's) load
// as the server loads them.
func TestDeployConfigurationsLoad(t *testing.T) {
	t.Parallel()
	for f, data := range deployConfigurations(t) {
		require.NoError(t, loadHTTPConnector(f, data), f)
	}
}

// deployConfigurations are the configuration files deploy/ ships, by path.
func deployConfigurations(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "*.cfg"))
	require.NoError(t, err)
	require.Len(t, files, 2)
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		out[f] = data
	}
	return out
}

// The configurations deploy/ ships are shown in docs/deploy.md as they are:
// some ```ini block of the page holds the same lines as the file, comments
// and blank lines aside. A block that left out the image's roles had a user
// who copied it for the file docker run mounts refused every Fetch
// (ERRORPERMISSIONDENIED: the published port's clients come from the
// container network's gateway, not from localhost).
func TestDeployConfigurationsAreShownWhole(t *testing.T) {
	t.Parallel()
	page := filepath.Join("docs", "deploy.md")
	data, err := os.ReadFile(filepath.Join(repoRoot, page))
	require.NoError(t, err)
	blocks, err := iniBlocks(page, data)
	require.NoError(t, err)
	for f, text := range deployConfigurations(t) {
		want := strings.Join(settingLines(text), "\n")
		found := false
		for _, b := range blocks {
			found = found || strings.Join(settingLines(b.text), "\n") == want
		}
		require.True(t, found, "no ```ini block of %s shows %s as it is:\n%s", page, filepath.Base(f), want)
	}
}

// settingLines are the lines of a configuration that say something:
// sections and keys, trimmed, without comments and blank lines.
func settingLines(text []byte) []string {
	var out []string
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "//") || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}
