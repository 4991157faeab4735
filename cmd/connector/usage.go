package main

import "strings"

// flagAfterArgs returns the first of a command's arguments (what its flags
// left) that is a flag, or "". Go's flag package stops at the first
// argument that is no flag, so in `connector bench report run.json -o
// page.html` the -o and page.html are left as arguments; a command says
// so (flagAfterArgsError) rather than take them for files or tasks.
func flagAfterArgs(args []string) string {
	for _, a := range args {
		if len(a) > 1 && a[0] == '-' {
			name, _, _ := strings.Cut(a, "=")
			return name
		}
	}
	return ""
}

// flagAfterArgsError is the message of a command given a flag after an
// argument.
func flagAfterArgsError(cmd, flag string) string {
	return cmd + ": the flag " + flag + " comes after an argument: give the flags first"
}
