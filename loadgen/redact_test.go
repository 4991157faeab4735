package loadgen

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/connectorhq/connector/loadgen/wire"
)

// Secrets a run sends (a task's password as a per-request override, a URL
// with credentials) go to the server as given, and are shown nowhere else:
// not in the plan printed before the run, nor in the report as a table,
// JSON, HTML or Prometheus text. The connector encrypts such a parameter
// and shows it as [REDACTED] (docs/security.md); the harness printed it on
// stderr and wrote it into every report file.
func TestSecretsSentAreNeverShown(t *testing.T) {
	t.Parallel()
	const params = "TaskSections=Small&%5BSmall%5DBasicAuthPassword=s3cret1&Url=http%3A%2F%2Fu%3As3cret2%40127.0.0.1%2F&ApiKey=s3cret3"
	check := func(what, text string) {
		t.Helper()
		for _, s := range []string{"s3cret1", "s3cret2", "s3cret3"} {
			require.NotContains(t, text, s, "%s shows a secret:\n%s", what, text)
		}
		require.Contains(t, text, "TaskSections", "%s shows the parameters", what)
	}

	f := newFake()
	base := f.start(t)
	cfg := Config{Target: base, Scenario: ScenarioSubmit, Params: params, Requests: 3, Duration: time.Minute, Concurrency: 1}
	plan, err := Describe(context.Background(), cfg)
	require.NoError(t, err)
	check("the plan", plan.String())

	var planOut bytes.Buffer
	cfg.Plan = &planOut
	rep, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	check("the plan Run printed", planOut.String())
	f.mu.Lock()
	require.Equal(t, "s3cret1", f.params["[small]basicauthpassword"], "the server gets the secret")
	require.Equal(t, "http://u:s3cret2@127.0.0.1/", f.params["url"])
	f.mu.Unlock()
	for name, write := range map[string]func(*bytes.Buffer) error{
		"the table": func(b *bytes.Buffer) error { return WriteTable(b, rep) },
		"the JSON":  func(b *bytes.Buffer) error { return WriteJSON(b, rep) },
		"the HTML":  func(b *bytes.Buffer) error { return WriteHTML(b, rep) },
	} {
		var b bytes.Buffer
		require.NoError(t, write(&b), name)
		check(name, b.String())
	}

	// A workload file: its variables as used, -set ones included.
	dir := t.TempDir()
	path := filepath.Join(dir, "w.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`schema: connector-workload/1
name: secrets
vars:
  password: s3cret1
  task: Small
operations:
  - name: op
    steps:
      - name: fetch
        request: action=Fetch&FetchAction=Synchronize&TaskSections={{task}}&[Small]BasicAuthPassword={{password}}&ApiKey=s3cret3
        expect: {token: true}
`), 0o600))
	w, err := LoadWorkload(path)
	require.NoError(t, err)
	cfg = Config{Target: base, Workload: w, Vars: map[string]string{"task": "TaskSections"}, Requests: 2, Duration: time.Minute, Concurrency: 1}
	plan, err = Describe(context.Background(), cfg)
	require.NoError(t, err)
	check("the workload's plan", plan.String())
	rep, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, rep))
	check("the workload's JSON", b.String())
	require.True(t, strings.Contains(b.String(), `"password": "[REDACTED]"`), "the variable is named, its value redacted:\n%s", b.String())
}

// A load generator logs the target of every plan it receives: a plan
// whose target holds a password (which the generator then refuses) must
// not have its password logged.
func TestWorkerLogHidesTheTargetPassword(t *testing.T) {
	t.Parallel()
	var logBuf bytes.Buffer
	h := WorkerHandler(WorkerOptions{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	body, err := proto.Marshal(&wire.Plan{RunId: "r", Workers: 1, Target: "http://admin:s3cret@127.0.0.1:7000", Concurrency: 1,
		Workload:     []byte("schema: connector-workload/1\nname: v\noperations:\n  - name: v\n    steps:\n      - name: v\n        request: action=GetVersion\n"),
		WorkloadFile: "v.yaml", DurationNs: int64(time.Second)})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, WorkerPath, bytes.NewReader(body)))
	var res wire.Result
	require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), &res))
	require.Contains(t, res.GetError(), "no user", "the plan is refused")
	require.NotContains(t, res.GetError(), "s3cret")
	require.Contains(t, logBuf.String(), "plan received")
	require.NotContains(t, logBuf.String(), "s3cret", "the generator's log:\n%s", logBuf.String())
}

// TestRedactQueryHidesURLQuerySecrets: a URL whose query carries a
// credential (?access_token=) in a workload's parameter is shown with it
// redacted, as the connector shows it (secret.RedactURLs), encoded or
// not. On main only a URL with a password was redacted: the plan and
// every report showed Url=https://h/?access_token=... in clear.
func TestRedactQueryHidesURLQuerySecrets(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Url=https%3A%2F%2Fh%2Fx%3Faccess_token%3D%5BREDACTED%5D%26a%3D1&x=1",
		redactQuery("Url=https%3A%2F%2Fh%2Fx%3Faccess_token%3Dsekrit%26a%3D1&x=1"))
	require.Equal(t, "Next=https://h/?token=[REDACTED]", redactQuery("Next=https://h/?token=sekrit"))
	require.Equal(t, "Url=https://h/?page=2", redactQuery("Url=https://h/?page=2"))
}
