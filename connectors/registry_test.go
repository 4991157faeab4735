package connectors_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/connectors/httpfetch"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/fetch/fetchtest"
)

// TestEmbeddedDefaultLoads (moved here from package config with the
// default configuration it checks).
func TestEmbeddedDefaultLoads(t *testing.T) {
	t.Parallel()
	c, _, err := connectors.Load("")
	require.NoError(t, err)
	require.Equal(t, config.DefaultName, c.Path)
	require.Equal(t, []string{"MyTask"}, c.FetchTasks)
	require.Equal(t, "127.0.0.1", c.Server.Host, "a fresh install must not listen on the network")
	require.Equal(t, 7000, c.Server.Port)
	require.Equal(t, 4, c.Actions.MaximumThreads)
	require.Equal(t, filepath.Join("data", "ingest"), c.Ingestion.Directory)
}

func TestBuiltinDefaultIsHTTP(t *testing.T) {
	t.Parallel()
	require.Equal(t, httpfetch.Type, connectors.Builtin.Default().Type)
	require.Equal(t, config.DefaultType, connectors.Builtin.Default().Type, "a file without [Connector] Type runs the default")
	cfg, conn, err := connectors.Load("")
	require.NoError(t, err)
	require.Equal(t, "HTTP", conn.Type)
	require.Equal(t, "HTTPCONNECTOR", conn.Product)
	require.Equal(t, "HTTP", cfg.Connector.Type)
	require.Equal(t, config.DefaultName, cfg.Path)
}

func TestGoogleMailIsRegistered(t *testing.T) {
	t.Parallel()
	cfg, conn, err := connectors.Builtin.Parse("c.cfg", []byte("[Connector]\nType=googlemail\n[FetchTasks]\n0=M\n[M]\nUsername=a@example.com\nPassword=p\n"))
	require.NoError(t, err)
	require.Equal(t, "GOOGLEMAIL", conn.Type)
	require.Equal(t, "GOOGLEMAILCONNECTOR", conn.Product)
	require.Equal(t, "GOOGLEMAIL", cfg.Connector.Type)
	// Its task keys are its own: a web task's Url is refused.
	_, _, err = connectors.Builtin.Parse("c.cfg", []byte("[Connector]\nType=GOOGLEMAIL\n[FetchTasks]\n0=M\n[M]\nUrl=http://x/\n"))
	require.ErrorIs(t, err, config.ErrUnknownKey)
}

func TestWebexAndObjectiveAreRegistered(t *testing.T) {
	t.Parallel()
	cfg, conn, err := connectors.Builtin.Parse("c.cfg", []byte("[Connector]\nType=webex\n[FetchTasks]\n0=W\n[W]\nOAuthClientID=c\n"))
	require.NoError(t, err)
	require.Equal(t, "WEBEX", conn.Type)
	require.Equal(t, "WEBEXCONNECTOR", conn.Product)
	require.Equal(t, "WEBEX", cfg.Connector.Type)
	_, conn, err = connectors.Builtin.Parse("c.cfg", []byte("[Connector]\nType=Objective\n[FetchTasks]\n0=O\n[O]\nServerUrl=https://o.example.com\nUsername=u\nPassword=p\n"))
	require.NoError(t, err)
	require.Equal(t, "OBJECTIVE", conn.Type)
	require.Equal(t, "OBJECTIVERESTCONNECTOR", conn.Product)
	// Their task keys are their own.
	_, _, err = connectors.Builtin.Parse("c.cfg", []byte("[Connector]\nType=WEBEX\n[FetchTasks]\n0=W\n[W]\nOAuthClientID=c\nRootFolders=fA0\n"))
	require.ErrorIs(t, err, config.ErrUnknownKey)
	_, _, err = connectors.Builtin.Parse("c.cfg", []byte("[Connector]\nType=OBJECTIVE\n[FetchTasks]\n0=O\n[O]\nServerUrl=https://o\nUsername=u\nPassword=p\nRooms=x\n"))
	require.ErrorIs(t, err, config.ErrUnknownKey)
	// A Webex task needs its integration's client ID.
	_, _, err = connectors.Builtin.Parse("c.cfg", []byte("[Connector]\nType=WEBEX\n[FetchTasks]\n0=W\n[W]\nPageSize=10\n"))
	require.ErrorContains(t, err, "OAuthClientID")
}

func TestTypeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	cfg, conn, err := connectors.Builtin.Parse("c.cfg", []byte("[Connector]\nType=http\n[FetchTasks]\n0=T\n[T]\nUrl=http://127.0.0.1:8000/\n"))
	require.NoError(t, err)
	require.Equal(t, "HTTP", conn.Type)
	require.Equal(t, "HTTP", cfg.Connector.Type)
}

// An unknown type stops start-up with an error at [Connector] Type that
// lists the known types.
func TestUnknownTypeListsKnownOnes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.cfg")
	require.NoError(t, os.WriteFile(path, []byte("[Server]\nPort=0\n\n[Connector]\nType=Gopher\n"), 0o600))
	_, _, err := connectors.Load(path)
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "config "+path+":5: [Connector] Type: unknown connector type \"GOPHER\": known types are GOOGLEMAIL, HTTP, OBJECTIVE, WEB, WEBEX", err.Error())

	other := &fetch.Descriptor{Type: "TEST", Product: "TESTCONNECTOR", DefaultConfig: []byte("[Server]\n"),
		TaskKeys: func(string, string) error { return config.ErrUnknownKey }, Check: func(*config.Config) error { return nil },
		FetchActions: []string{"SYNCHRONIZE"}, New: func(fetch.Deps) (fetch.Repository, error) { return &fetchtest.Repo{}, nil }}
	r, err := connectors.NewRegistry(httpfetch.Descriptor(), other)
	require.NoError(t, err)
	require.Equal(t, []string{"HTTP", "TEST"}, r.Types())
	_, err = r.Lookup("web")
	require.EqualError(t, err, `unknown connector type "web": known types are HTTP, TEST`)
	// The type decides the task keys: [T] Url is the HTTP connector's key, not TEST's.
	_, _, err = r.Parse("c.cfg", []byte("[Connector]\nType=TEST\n[FetchTasks]\n0=T\n[T]\nUrl=http://x/\n"))
	require.ErrorIs(t, err, config.ErrUnknownKey)
	_, d, err := r.Parse("c.cfg", []byte("[Connector]\nType=test\n"))
	require.NoError(t, err)
	require.Equal(t, "TESTCONNECTOR", d.Product)
}

func TestRegistryRefusesBadDescriptors(t *testing.T) {
	t.Parallel()
	_, err := connectors.NewRegistry(httpfetch.Descriptor(), httpfetch.Descriptor())
	require.EqualError(t, err, "connectors: type HTTP registered twice")
	_, err = connectors.NewRegistry(&fetch.Descriptor{Type: "X"})
	require.EqualError(t, err, "fetch: connector X: the descriptor lacks Product, DefaultConfig, TaskKeys, Check, FetchActions, New")
	_, err = connectors.NewRegistry(&fetch.Descriptor{Type: "lower"})
	require.Error(t, err)
	_, err = connectors.NewRegistry()
	require.True(t, err != nil && !errors.Is(err, config.ErrUnknownKey))
}

// TestUnknownTaskKeyNamesThePageListingTheKeys: an unknown task setting's
// error names the page that lists the connector's task settings (its
// Descriptor.Doc), and that page has a table row for each of a few of
// them. The HTTP connector's error named docs/configuration.md, which
// lists the server-wide keys only and no task setting.
func TestUnknownTaskKeyNamesThePageListingTheKeys(t *testing.T) {
	t.Parallel()
	known := map[string]string{"HTTP": "Depth", "WEB": "RenderUrlRegex", "GOOGLEMAIL": "Folders", "WEBEX": "WebexApiUrl", "OBJECTIVE": "RootFolders"}
	for _, typ := range connectors.Builtin.Types() {
		d, err := connectors.Builtin.Lookup(typ)
		require.NoError(t, err)
		err = d.TaskKeys("NoSuchSetting", "1")
		require.ErrorIs(t, err, config.ErrUnknownKey, typ)
		require.Contains(t, err.Error(), d.Doc+" lists them", typ)
		require.NotRegexp(t, `\ba [AEIOU]`, err.Error(), "%s: the message said 'a Objective task setting'", typ)
		page, err := os.ReadFile(filepath.Join("..", d.Doc))
		require.NoError(t, err, typ)
		key, ok := known[typ]
		require.True(t, ok, "a task setting of %s to look for in %s", typ, d.Doc)
		require.False(t, errors.Is(d.TaskKeys(key, "x"), config.ErrUnknownKey), "%s is a setting of %s", key, typ)
		require.Contains(t, string(page), "| `"+key+"`", "%s lists %s", d.Doc, key)
	}
}
