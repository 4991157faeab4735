package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/testlog"
	"github.com/connectorhq/connector/internal/testwait"
	"github.com/connectorhq/connector/secret"
	"github.com/connectorhq/connector/server"
)

// TestSecretsNeverInClear is the regression test of issue 9 item 10 on the
// assembled server: a password given as an override (in the URI, and in a
// POST body's Config fragment) reaches the site, and appears in clear in
// none of GetRequestLog, GetActionParameters, the log (at debug level),
// the IDX output or any file of the data folder (the store); a malformed
// request's Authorization and Cookie headers are never echoed.
func TestSecretsNeverInClear(t *testing.T) {
	t.Parallel()
	const password = "Tr0ub4dor&3-horse"
	var authorised, refused atomic.Int32
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "crawler" || p != password {
			refused.Add(1)
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		authorised.Add(1)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><head><title>page %s</title></head><body><a href="/next">next</a></body></html>`, r.URL.Path)
	}))
	defer site.Close()
	dir := t.TempDir()
	cfg, err := config.Parse("secrets.cfg", []byte(fmt.Sprintf(`
[Server]
DataDirectory=%s
[Logging]
LogLevel=debug
[Ingestion]
IngestDirectory=%s
[FetchTasks]
0=MyTask
[MyTask]
Url=%s/
BasicAuthUsername=crawler
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), site.URL)), httpfetch.TaskKeys)
	require.NoError(t, err)
	var logs testlog.Buffer
	srv, err := server.Start(cfg, server.Options{Port: 0, LogOutput: &logs,
		Repository: func(d server.Deps) (fetch.Repository, error) {
			return httpfetch.New(httpfetch.Options{Config: d.Config, Store: d.Store, Target: d.Target, Logger: d.Logger})
		}})
	require.NoError(t, err)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	}
	defer stop()
	base := "http://" + srv.Addr().String()
	get := func(path string) string {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	token := func(reply string) string {
		tok := between(reply, "<token>", "</token>")
		require.NotEmpty(t, tok, reply)
		return tok
	}
	var shown strings.Builder // everything the server showed

	// Paused, so that the actions' parameters can be read while queued.
	shown.WriteString(get("/action=QueueInfo&QueueName=fetch&QueueAction=Pause"))
	t1 := token(get("/action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&%5BMyTask%5DBasicAuthPassword=" + url.QueryEscape(password)))
	frag := base64.StdEncoding.EncodeToString([]byte("[MyTask]\nBasicAuthPassword=" + password + "\n"))
	resp, err := http.Post(base+"/", "application/x-www-form-urlencoded", strings.NewReader(
		"action=Fetch&FetchAction=Synchronize&TaskSections=MyTask&Config="+url.QueryEscape(frag)))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t2 := token(string(body))
	for _, tok := range []string{t1, t2} {
		p := get("/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters&Token=" + url.QueryEscape(tok))
		require.Contains(t, p, "<response>SUCCESS</response>", p)
		shown.WriteString(p)
	}
	shown.WriteString(get("/action=QueueInfo&QueueName=fetch&QueueAction=GetActionParameters"))
	// A malformed request carrying the password in its headers.
	c, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	basic := base64.StdEncoding.EncodeToString([]byte("crawler:" + password))
	_, err = c.Write([]byte("GET /action=GetVersion HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic " + basic +
		"\r\nCookie: pw=" + password + "\r\nnot a header\r\n\r\n"))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, _ := io.ReadAll(c)
	c.Close()
	require.Contains(t, string(raw), "ERRORBADREQUEST")
	shown.Write(raw)

	shown.WriteString(get("/action=QueueInfo&QueueName=fetch&QueueAction=Resume"))
	for _, tok := range []string{t1, t2} {
		testwait.For(t, 20*time.Second, func() bool {
			s := get("/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=" + url.QueryEscape(tok))
			return strings.Contains(s, "<status>Finished</status>")
		}, "the action finishes")
	}
	require.Equal(t, int32(6), authorised.Load(), "both runs fetched robots.txt and both pages with the password")
	require.Zero(t, refused.Load())
	log := get("/action=GetRequestLog")
	require.Contains(t, log, "BasicAuthPassword=%5BREDACTED%5D")
	shown.WriteString(log)
	stop()

	for _, leak := range []string{password, basic, url.QueryEscape(password)} {
		require.NotContains(t, shown.String(), leak)
		require.NotContains(t, logs.String(), leak)
		require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(leak)) {
				return fmt.Errorf("%s holds the password in clear", p)
			}
			return nil
		}))
	}
	out, err := os.ReadDir(filepath.Join(dir, "out"))
	require.NoError(t, err)
	require.NotEmpty(t, out, "the IDX output was written (and checked)")
}

// TestPasswordCommand: `connector password` prints IDOL's encrypted form,
// which the key file decrypts back; it refuses a password given as an
// argument.
func TestPasswordCommand(t *testing.T) {
	t.Parallel()
	keyPath := filepath.Join(t.TempDir(), "keys", "aes.ky")
	var out, errOut bytes.Buffer
	code := passwordMain([]string{"-keyfile", keyPath}, strings.NewReader("s3cret pass\n"), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	v := strings.TrimSpace(out.String())
	require.True(t, secret.IsEncrypted(v))
	k, err := secret.LoadKeyFile(keyPath)
	require.NoError(t, err)
	got, err := k.Decrypt(v)
	require.NoError(t, err)
	require.Equal(t, "s3cret pass", got)
	require.Equal(t, 2, passwordMain([]string{"-keyfile", keyPath, "s3cret"}, strings.NewReader(""), &out, &errOut))
	require.Equal(t, 2, passwordMain([]string{"-keyfile", keyPath}, strings.NewReader(""), &out, &errOut))
}
