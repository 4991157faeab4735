//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/secret"
)

// openPTY returns a new pseudo-terminal: its controller side (what a
// terminal emulator holds) and the terminal a program reads.
func openPTY(t *testing.T) (ctl, term *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ctl.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(ctl.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(ctl.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	term, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = term.Close() })
	return ctl, term
}

// echoOn reports whether the terminal echoes what is typed (false when
// its settings cannot be read).
func echoOn(term *os.File) bool {
	tio, err := unix.IoctlGetTermios(int(term.Fd()), unix.TCGETS)
	return err == nil && tio.Lflag&unix.ECHO != 0
}

// TestPasswordCommandDoesNotEchoATypedPassword: `connector password` run
// at a terminal asks for the password on standard error and reads it
// without echo, as passwd and ssh-keygen do, then puts the terminal back
// as it was. It waited without a word, and the password typed was shown
// on the screen (and kept in the terminal's scrollback, seen by whoever
// shares the screen).
func TestPasswordCommandDoesNotEchoATypedPassword(t *testing.T) {
	t.Parallel()
	ctl, term := openPTY(t)
	require.True(t, echoOn(term), "a new terminal echoes")
	keyPath := filepath.Join(t.TempDir(), "aes.ky")
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- passwordMain([]string{"-keyfile", keyPath}, term, &out, &errOut) }()
	// The password is typed once the terminal no longer echoes.
	testwait.For(t, 10*time.Second, func() bool { return !echoOn(term) }, "the terminal's echo turned off")
	_, err := ctl.WriteString("typed s3cret\n")
	require.NoError(t, err)
	code := testwait.Recv(t, done, 30*time.Second, "connector password to return once the password is typed")
	require.Equal(t, 0, code, errOut.String())
	require.True(t, echoOn(term), "the terminal echoes again")
	require.True(t, strings.HasPrefix(errOut.String(), "Password: \n"), "%q", errOut.String())

	// What the terminal showed: the echo of what was typed comes before
	// anything written to it afterwards.
	_, err = term.WriteString("END")
	require.NoError(t, err)
	var shown []byte
	buf := make([]byte, 256)
	for !bytes.Contains(shown, []byte("END")) {
		require.NoError(t, ctl.SetReadDeadline(time.Now().Add(30*time.Second)))
		n, err := ctl.Read(buf)
		require.NoError(t, err)
		shown = append(shown, buf[:n]...)
	}
	require.NotContains(t, string(shown), "s3cret", "the typed password was echoed")

	k, err := secret.LoadKeyFile(keyPath)
	require.NoError(t, err)
	got, err := k.Decrypt(strings.TrimSpace(out.String()))
	require.NoError(t, err)
	require.Equal(t, "typed s3cret", got)
}

// TestPasswordCommandCtrlCTurnsTheEchoBackOn: Ctrl-C at the password
// prompt ends `connector password` as it would any program, and leaves
// the terminal echoing: the shell's next commands are seen as typed.
func TestPasswordCommandCtrlCTurnsTheEchoBackOn(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	ctl, term := openPTY(t)
	cmd := exec.Command(bin, "password", "-keyfile", filepath.Join(t.TempDir(), "aes.ky"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term, term, term
	// The terminal is the program's own (its controlling terminal), so
	// that a Ctrl-C typed on it interrupts the program.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	testwait.For(t, 30*time.Second, func() bool { return !echoOn(term) }, "the terminal's echo turned off")
	_, err := ctl.WriteString("half typed\x03")
	require.NoError(t, err)
	err = testwait.Recv(t, exited, 30*time.Second, "connector password to end on Ctrl-C")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, syscall.SIGINT, ee.Sys().(syscall.WaitStatus).Signal(), "ended by the interrupt: %v", err)
	require.True(t, echoOn(term), "the terminal echoes again")
}

// TestPasswordCommandFromDevNull: standard input that is a character
// device but no terminal (/dev/null) is read as a pipe is, without a
// prompt.
func TestPasswordCommandFromDevNull(t *testing.T) {
	t.Parallel()
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	var out, errOut bytes.Buffer
	require.Equal(t, 2, passwordMain([]string{"-keyfile", filepath.Join(t.TempDir(), "aes.ky")}, null, &out, &errOut))
	require.Equal(t, "connector password: no password on standard input\n", errOut.String())
}
