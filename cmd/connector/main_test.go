package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/httpfetch"
)

func TestEmbeddedDefaultIsValid(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", httpfetch.TaskKeys)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", cfg.Server.Host)
	require.Equal(t, []string{"MyTask"}, cfg.FetchTasks)
}

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cfg")
	require.NoError(t, os.WriteFile(bad, []byte("[Actions]\nMaximumThreads=lots\n"), 0o600))
	unknown := filepath.Join(dir, "unknown.cfg")
	require.NoError(t, os.WriteFile(unknown, []byte("[FetchTasks]\n0=T\n[T]\nUrl=http://127.0.0.1:1/\nDepht=2\n"), 0o600))
	for _, tc := range []struct {
		desc string
		args []string
		code int
		want string
	}{
		{"bad value names file, section and key", []string{"-config", bad}, 1, "config " + bad + ": [Actions] MaximumThreads"},
		{"unknown task key", []string{"-config", unknown}, 1, "[T] Depht: unknown key"},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.cfg")}, 1, "nope.cfg"},
		{"bad port", []string{"-port", "70000"}, 2, "not a port number"},
		{"bad flag", []string{"-frobnicate"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"serve"}, 2, `unexpected argument "serve"`},
		{"help", []string{"-h"}, 0, "usage: connector"},
	} {
		var stderr bytes.Buffer
		code := run(tc.args, &stderr)
		require.Equal(t, tc.code, code, "%s: %s", tc.desc, stderr.String())
		require.Contains(t, stderr.String(), tc.want, tc.desc)
	}
}
