package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/secret"
)

// passwordMain is `connector password`: it reads a password alone on one
// line of standard input (never from the command line, which other users
// of the machine can see; more lines after it, but empty ones, are
// refused, not dropped; typed at a terminal, it is asked for and not
// echoed) and prints it in IDOL's encrypted-password form,
// encrypted with the key file of the configuration's [Security] AESKeyFile
// (or -keyfile), which is created when missing (and then named on
// stderr: a key the server does not read is no use). The output is what
// autpassword -e -tAES prints, and goes in a secret setting
// (BasicAuthPassword=...).
func passwordMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connector password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file whose [Security] AESKeyFile to use (default: the embedded default configuration)")
	keyFile := fs.String("keyfile", "", "key file to use instead of the configuration's")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: echo PASSWORD | connector password [-config FILE | -keyfile FILE]\n\n"+
			"Prints the password in IDOL's encrypted form (as autpassword -e -tAES does), for a secret setting.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "connector password: unexpected argument %q (give the password on standard input)\n", fs.Arg(0))
		return 2
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["config"] && given["keyfile"] {
		fmt.Fprintln(stderr, "connector password: give -config or -keyfile, not both (-keyfile is the key file itself; -config names the configuration whose [Security] AESKeyFile to use)")
		return 2
	}
	path := *keyFile
	if path == "" {
		cfg, _, err := connectors.Read(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "connector password: %v\n", err)
			return 1
		}
		path = cfg.Security.AESKeyFile
	}
	in := bufio.NewReader(stdin)
	// Typed at a terminal, the password is asked for and not shown.
	restore, prompted := func() {}, false
	if f, ok := stdin.(*os.File); ok && isTerminal(stdin) {
		if restore, prompted = noEcho(f); prompted {
			fmt.Fprint(stderr, "Password: ")
		}
	}
	line, err := in.ReadString('\n')
	if prompted {
		restore()
		fmt.Fprintln(stderr) // the Enter typed, not echoed
	}
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "connector password: read standard input: %v\n", err)
		return 1
	}
	if err == nil && !isTerminal(stdin) {
		// A second line (a multi-line paste) was dropped without a word,
		// and the first alone encrypted: refused. Empty lines after the
		// password are harmless. A terminal is not read on: that would
		// wait for end of input after the password's Enter.
		rest, err := io.ReadAll(io.LimitReader(in, 64<<10))
		if err != nil {
			fmt.Fprintf(stderr, "connector password: read standard input: %v\n", err)
			return 1
		}
		if strings.Trim(string(rest), "\r\n") != "" {
			fmt.Fprintln(stderr, "connector password: standard input has more than one line: give the password alone, on one line")
			return 2
		}
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "connector password: no password on standard input")
		return 2
	}
	if !utf8.ValidString(pw) {
		// The server refuses such a value (secret.Key.Decrypt): it is
		// what another key gives.
		fmt.Fprintln(stderr, "connector password: the password on standard input is not UTF-8 text")
		return 2
	}
	_, statErr := os.Stat(path)
	key, err := secret.EnsureKeyFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "connector password: %v\n", err)
		return 1
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// Said, with the absolute path: run in another folder than the
		// server's, a relative AESKeyFile (or DataDirectory) names
		// another file, and the server refuses the value.
		fmt.Fprintf(stderr, "connector password: made a new key file, %s: only a server whose [Security] AESKeyFile is this file decrypts the value "+
			"(a relative path is taken from the folder a program runs in)\n", filepath.FromSlash(key.Path()))
	}
	v, err := key.Encrypt(pw)
	if err != nil {
		fmt.Fprintf(stderr, "connector password: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, v)
	return 0
}

// isTerminal says whether r is a terminal (a character device).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
