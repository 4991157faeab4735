package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/secret"
)

// testTaskKeys accepts Url and Depth, like a tiny repository would.
func testTaskKeys(key, value string) error {
	switch strings.ToLower(key) {
	case "url":
		return nil
	case "depth":
		if _, err := intIn(value, -1, 1000); err != nil {
			return err
		}
		return nil
	}
	return ErrUnknownKey
}

func TestParseFull(t *testing.T) {
	t.Parallel()
	c, err := Parse("x.cfg", []byte(`
// IDOL comment
; ini comment
[server]
PORT = 9100
host=0.0.0.0
ReadTimeout=1.5s
ShutdownTimeout=2

[Actions]
MaximumThreads=8
MaximumQueueSize=10
FinishedActionMaxAge=2d
UseInMemoryDatastore=Y
ProcessingOnRestart=error

[FetchTasks]
Number=2
0=Alpha
1=Beta
Depth=3

[Default]
Url="http://example.com/a \"b\""

[Alpha]
Depth=1

[Logging]
LogLevel=DEBUG
`), testTaskKeys)
	require.NoError(t, err)
	require.Equal(t, 9100, c.Server.Port)
	require.Equal(t, "0.0.0.0", c.Server.Host)
	require.Equal(t, 1500*time.Millisecond, c.Server.ReadTimeout)
	require.Equal(t, 2*time.Second, c.Server.ShutdownTimeout)
	require.Equal(t, 8, c.Actions.MaximumThreads)
	require.Equal(t, 48*time.Hour, c.Actions.FinishedActionMaxAge)
	require.True(t, c.Actions.UseInMemoryDatastore)
	require.Equal(t, "Error", c.Actions.ProcessingOnRestart)
	require.Equal(t, "debug", c.Logging.Level)
	require.Equal(t, []string{"Alpha", "Beta"}, c.FetchTasks)
	// precedence: task section > [FetchTasks] > [Default]
	v, _ := c.TaskValue("alpha", "depth")
	require.Equal(t, "1", v)
	v, _ = c.TaskValue("Beta", "Depth")
	require.Equal(t, "3", v)
	v, _ = c.TaskValue("Beta", "URL")
	require.Equal(t, `http://example.com/a "b"`, v)
	require.True(t, c.HasTask("BETA"))
	require.False(t, c.HasTask("Gamma"))
	require.Equal(t, []string{"Alpha"}, c.TaskSections(), "[Default] is not a task; Beta has no section of its own")
}

func TestParseErrorsNameFileLineSectionKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, cfg    string
		line         int
		section, key string
		want         string // the whole message
		sentinel     error
	}{
		{"unknown key", "[Server]\nPotr=1\n", 2, "Server", "Potr",
			"config c.cfg:2: [Server] Potr: unknown key (did you mean Port?); [Server] takes Host, Port, DataDirectory, MaxRequestBytes, MaxRequestParameters, ReadTimeout, WriteTimeout, IdleTimeout, RequestLogSize, ShutdownTimeout, MaxConnections", ErrUnknownKey},
		{"bad port", "[Server]\nPort=http\n", 2, "Server", "Port",
			`config c.cfg:2: [Server] Port: "http" is not a whole number (expected 0 to 65535)`, nil},
		{"port out of range", "\n[Server]\n\nPort=70000\n", 4, "Server", "Port",
			"config c.cfg:4: [Server] Port: 70000 is out of range (expected 0 to 65535)", nil},
		{"bad bool", "[Actions]\nUseInMemoryDatastore=maybe\n", 2, "Actions", "UseInMemoryDatastore",
			`config c.cfg:2: [Actions] UseInMemoryDatastore: "maybe" is not a Boolean (use true or false)`, nil},
		{"zero threads", "[Actions]\nMaximumThreads=0\n", 2, "Actions", "MaximumThreads",
			"config c.cfg:2: [Actions] MaximumThreads: 0 is out of range (expected 1 to 4096)", nil},
		{"bad duration", "[Actions]\nFinishedActionMaxAge=soon\n", 2, "Actions", "FinishedActionMaxAge",
			`config c.cfg:2: [Actions] FinishedActionMaxAge: "soon" is not a duration (examples: 30, 1.5s, 10m, 2h, 7d)`, nil},
		{"compaction percent", "[Actions]\nCompactFreePercent=100\n", 2, "Actions", "CompactFreePercent",
			"config c.cfg:2: [Actions] CompactFreePercent: 100 is out of range (expected 0 to 99)", nil},
		{"commit delay too long", "[Actions]\nCommitDelay=1s\n", 2, "Actions", "CommitDelay",
			"config c.cfg:2: [Actions] CommitDelay: 1s is more than 100ms", nil},
		{"zero compaction timeout", "[Actions]\nCompactTimeout=0\n", 2, "Actions", "CompactTimeout",
			"config c.cfg:2: [Actions] CompactTimeout: must be more than 0", nil},
		{"host with a port", "[Server]\nHost=127.0.0.1:7000\n", 2, "Server", "Host",
			`config c.cfg:2: [Server] Host: "127.0.0.1:7000" holds a port: give the address alone (e.g. 127.0.0.1) and the port in its own key`, nil},
		{"host as a URL", "[Server]\nHost=http://0.0.0.0/\n", 2, "Server", "Host",
			`config c.cfg:2: [Server] Host: "http://0.0.0.0/" is not an address or host name (expected e.g. 127.0.0.1, 0.0.0.0, ::1 or connector.example.com; no scheme, port or path)`, nil},
		{"CFS host with a port", "[Ingestion]\nIngesterType=CFS\nIngestHost=cfs.example.com:9000\nIngestPort=7000\n", 3, "Ingestion", "IngestHost",
			`config c.cfg:3: [Ingestion] IngestHost: "cfs.example.com:9000" holds a port: give the address alone (e.g. cfs.example.com) and the port in its own key`, nil},
		{"empty host", "[Server]\nHost=\n", 2, "Server", "Host",
			"config c.cfg:2: [Server] Host: must not be empty", nil},
		{"collect folder holds the data folder", "[Server]\nDataDirectory=/srv/connector/data\n[Security]\nCollectFolders=/srv/collect, /srv/connector\n", 4, "Security", "CollectFolders",
			"config c.cfg:4: [Security] CollectFolders: /srv/connector holds [Server] DataDirectory (/srv/connector/data): a Collect could replace the store's files (expected folders of their own, such as the default DataDirectory/collect)", nil},
		{"collect folder is the data folder", "[Server]\nDataDirectory=/srv/connector/data\n[Security]\nCollectFolders=/srv/connector/data/\n", 4, "Security", "CollectFolders",
			"config c.cfg:4: [Security] CollectFolders: /srv/connector/data holds [Server] DataDirectory (/srv/connector/data)", nil},
		{"insert folder holds the key", "[Security]\nInsertFolders=/srv/import\nAESKeyFile=/srv/import/keys/aes.ky\n", 2, "Security", "InsertFolders",
			"config c.cfg:2: [Security] InsertFolders: /srv/import holds [Security] AESKeyFile (/srv/import/keys/aes.ky): an Insert could read (and, with AllowTempFileDeletion, delete) the key of the secrets (expected folders of their own, such as the default DataDirectory/insert)", nil},
		{"key inside the default collect folder", "[Server]\nDataDirectory=/srv/d\n[Security]\nAESKeyFile=/srv/d/collect/aes.ky\n", 4, "Security", "AESKeyFile",
			"config c.cfg:4: [Security] AESKeyFile: /srv/d/collect holds [Security] AESKeyFile (/srv/d/collect/aes.ky): a Collect could replace the key of the secrets", nil},
		{"zero shutdown timeout", "[Server]\nShutdownTimeout=0\n", 2, "Server", "ShutdownTimeout",
			"config c.cfg:2: [Server] ShutdownTimeout: must be more than 0", nil},
		// 0 silently meant the default (5s, 30s...): refused as
		// ShutdownTimeout's is, since it may be read as "no wait" or
		// "no limit".
		{"zero stop timeout", "[Actions]\nStopTimeout=0\n", 2, "Actions", "StopTimeout",
			"config c.cfg:2: [Actions] StopTimeout: must be more than 0", nil},
		{"zero ingest timeout", "[Ingestion]\nIngestTimeout=0s\n", 2, "Ingestion", "IngestTimeout",
			"config c.cfg:2: [Ingestion] IngestTimeout: must be more than 0", nil},
		{"zero read timeout", "[Server]\nReadTimeout=0\n", 2, "Server", "ReadTimeout",
			"config c.cfg:2: [Server] ReadTimeout: must be more than 0", nil},
		{"zero write timeout", "[Server]\nWriteTimeout=0\n", 2, "Server", "WriteTimeout",
			"config c.cfg:2: [Server] WriteTimeout: must be more than 0", nil},
		{"zero idle timeout", "[Server]\nIdleTimeout=0\n", 2, "Server", "IdleTimeout",
			"config c.cfg:2: [Server] IdleTimeout: must be more than 0", nil},
		{"advertised port not a number", "[Cluster]\nAdvertisedAddress=node1:abc\n", 2, "Cluster", "AdvertisedAddress",
			`config c.cfg:2: [Cluster] AdvertisedAddress: "node1:abc": its port: "abc" is not a whole number (expected 1 to 65535)`, nil},
		{"advertised port 0", "[Cluster]\nAdvertisedAddress=node1:0\n", 2, "Cluster", "AdvertisedAddress",
			`config c.cfg:2: [Cluster] AdvertisedAddress: "node1:0": its port: 0 is out of range (expected 1 to 65535)`, nil},
		{"advertised without a host", "[Cluster]\nAdvertisedAddress=:7100\n", 2, "Cluster", "AdvertisedAddress",
			`config c.cfg:2: [Cluster] AdvertisedAddress: ":7100" is not host:port (expected e.g. node1.example.com:7100)`, nil},
		{"duplicate key", "[Server]\nPort=1\nport=2\n", 3, "Server", "port",
			"config c.cfg:3: [Server] port: key given more than once (first on line 2)", nil},
		{"duplicate section", "[Server]\nPort=1\n[SERVER]\nHost=x\n", 3, "SERVER", "",
			"config c.cfg:3: [SERVER]: section appears twice (first on line 1)", nil},
		{"duplicate by spaces", "[MyTask]\nUrl=a\n[MyTask ]\nDepth=1\n", 3, "MyTask", "",
			"config c.cfg:3: [MyTask]: section appears twice (first on line 1)", nil},
		{"task key unknown", "[MyTask]\nUrll=http://x\n", 2, "MyTask", "Urll",
			"config c.cfg:2: [MyTask] Urll: unknown key", ErrUnknownKey},
		{"task value bad", "[MyTask]\nDepth=deep\n", 2, "MyTask", "Depth",
			`config c.cfg:2: [MyTask] Depth: "deep" is not a whole number (expected -1 to 1000)`, nil},
		{"fetchtasks gap", "[FetchTasks]\nNumber=2\n0=A\n", 2, "FetchTasks", "1",
			"config c.cfg:2: [FetchTasks] 1: Number=2 but task 1 is not listed (expected 1=TaskName)", nil},
		// Without Number, the error named a "Number=2" the file does not
		// have, at the section's header.
		{"fetchtasks gap without Number", "[FetchTasks]\n0=A\n2=B\n", 3, "FetchTasks", "2",
			"config c.cfg:3: [FetchTasks] 2: task 1 is not listed, but a later one is (without Number, the tasks are numbered 0, 1, 2, ... without a gap: expected 1=TaskName)", nil},
		{"fetchtasks beyond", "[FetchTasks]\nNumber=1\n0=A\n3=B\n", 4, "FetchTasks", "3",
			"config c.cfg:4: [FetchTasks] 3: task index 3 is not below Number=1", nil},
		// 01 and 1 (or +1) are both task 1: the later entry replaced
		// the earlier, and that task was silently not listed (neither
		// synchronised by default nor scheduled).
		{"fetchtasks index twice", "[FetchTasks]\nNumber=2\n0=A\n1=B\n01=C\n", 5, "FetchTasks", "01",
			"config c.cfg:5: [FetchTasks] 01: task 1 is listed twice (first on line 4, as 1=B)", nil},
		{"fetchtasks index twice with a sign", "[FetchTasks]\n0=A\n+1=B\n1=C\n", 4, "FetchTasks", "1",
			"config c.cfg:4: [FetchTasks] 1: task 1 is listed twice (first on line 3, as +1=B)", nil},
		{"reserved task name", "[FetchTasks]\n0=Server\n", 2, "FetchTasks", "0",
			`config c.cfg:2: [FetchTasks] 0: task name "Server" is a reserved section name ([Connector], [Server], [Actions], [Logging], [Ingestion], [Security], [Service], [Cluster], [AuthorizationRoles], [FetchTasks], [Default] are not tasks)`, nil},
		{"bad level", "[Logging]\nLogLevel=loud\n", 2, "Logging", "LogLevel",
			`config c.cfg:2: [Logging] LogLevel: "loud" is not one of debug, info, warn, error (expected one of them, in any case)`, nil},
		{"cfs without host", "[Ingestion]\nIngesterType=CFS\n", 2, "Ingestion", "IngesterType",
			"config c.cfg:2: [Ingestion] IngesterType: IngesterType=CFS needs IngestHost and IngestPort (the CFS server's address)", nil},
		{"IngestSSL with a file target", "[Ingestion]\nIngestSSL=true\n", 2, "Ingestion", "IngestSSL",
			"config c.cfg:2: [Ingestion] IngestSSL: IngesterType=IDX writes files; IngestSSL is for a CFS reached over HTTPS: set IngesterType=CFS, or remove IngestSSL", nil},
		{"CFS address with a file target", "[Ingestion]\nIngesterType=JSONL\nIngestHost=cfs.example.com\nIngestPort=7000\n", 3, "Ingestion", "IngestHost",
			"config c.cfg:3: [Ingestion] IngestHost: IngesterType=JSONL writes files; IngestHost is the address of a CFS: set IngesterType=CFS, or remove IngestHost", nil},
		{"CFS port alone with a file target", "[Ingestion]\nIngestPort=7000\nIngesterType=IDX\n", 2, "Ingestion", "IngestPort",
			"config c.cfg:2: [Ingestion] IngestPort: IngesterType=IDX writes files; IngestPort is the port of a CFS: set IngesterType=CFS, or remove IngestPort", nil},
		{"key outside section", "Port=1\n[Server]\n", 1, "", "Port",
			"config c.cfg:1: Port: setting outside any [Section]: put it under the section it belongs to", nil},

		// Syntax.
		{"trailing // comment", "[Actions]\nMaximumThreads=4      // actions running at once\n", 2, "Actions", "MaximumThreads",
			`config c.cfg:2: [Actions] MaximumThreads: "4      // actions running at once" ends in what looks like a comment (//): comments must be on a line of their own (a line starting with //, ; or #); quote the value ("...") if the text belongs to it`, nil},
		{"trailing ; comment", "[Logging]\nLogFile=x.log ; the log\n", 2, "Logging", "LogFile",
			`config c.cfg:2: [Logging] LogFile: "x.log ; the log" ends in what looks like a comment (;): comments must be on a line of their own (a line starting with //, ; or #); quote the value ("...") if the text belongs to it`, nil},
		{"trailing # comment in a task", "[T]\nUrl=http://x/\t# start\n", 2, "T", "Url",
			`config c.cfg:2: [T] Url: "http://x/\t# start" ends in what looks like a comment (#)`, nil},
		{"comment after a quoted value", "[Logging]\nLogFile=\"x.log\" // the log\n", 2, "Logging", "LogFile",
			`config c.cfg:2: [Logging] LogFile: "// the log" after the closing quote: comments must be on a line of their own`, nil},
		{"unclosed quote", "[Logging]\nLogFile=\"x.log\n", 2, "Logging", "LogFile",
			`config c.cfg:2: [Logging] LogFile: "x.log: the quoted value has no closing "`, nil},
		{"comment after a header", "[Server] // the port\nPort=1\n", 1, "Server", "",
			`config c.cfg:1: [Server]: "// the port" after the section header: a section header stands alone on its line (comments go on a line of their own)`, nil},
		{"unclosed header", "[Server\nPort=1\n", 1, "", "",
			`config c.cfg:1: "[Server": a section header is [Name], with the closing ]`, nil},
		{"empty header", "[ ]\nPort=1\n", 1, "", "",
			"config c.cfg:1: []: a section needs a name", nil},
		{"no equals", "[Server]\nPort 7000\n", 2, "Server", "",
			`config c.cfg:2: [Server]: "Port 7000": expected Key=Value, a [Section] header, or a comment line (starting with //, ; or #)`, nil},
		{"empty key", "[Server]\n=7000\n", 2, "Server", "",
			`config c.cfg:2: [Server]: "=7000": the key before = is empty`, nil},
		{"IDOL include line", "[Server]\n< \"ssl.cfg\" [EnableSSL] SSLConfig\n", 2, "Server", "",
			`config c.cfg:2: [Server]: "< \"ssl.cfg\" [EnableSSL] SSLConfig": IDOL's include lines (< "FILE", < "FILE" [Section], < "FILE" [Section] Key) are not read here: copy what it names into this file`, nil},
		{"IDOL include line of a whole file", "< \"license.cfg\"\n[Server]\nPort=1\n", 1, "", "",
			`config c.cfg:1: "< \"license.cfg\"": IDOL's include lines`, nil},
		{"IDOL include line naming a secret", "[T]\n< \"s.cfg\" [S] ApiKey\n", 2, "T", "",
			`config c.cfg:2: [T]: the line (not shown: it names a secret): IDOL's include lines`, nil},

		// Sections.
		{"misspelled system section", "[Servr]\nPort=7001\n", 1, "Servr", "",
			"config c.cfg:1: [Servr]: unknown section (did you mean [Server]?): expected one of [Connector], [Server], [Actions], [Logging], [Ingestion], [Security], [Service], [Cluster], [AuthorizationRoles], [FetchTasks], [Default], or a fetch task section", ErrUnknownSection},
		{"misspelled Default with task keys", "[Defualt]\nDepth=2\n", 1, "Defualt", "",
			"config c.cfg:1: [Defualt]: unknown section (did you mean [Default]?)", ErrUnknownSection},
		{"system keys in an unknown section", "[Web]\nHost=0.0.0.0\n", 2, "Web", "Host",
			"config c.cfg:2: [Web] Host: unknown section: Host is a key of [Server], not a fetch task setting (did you mean [Server]?); expected one of [Connector], [Server], [Actions], [Logging], [Ingestion], [Security], [Service], [Cluster], [AuthorizationRoles], [FetchTasks], [Default], or a fetch task section", ErrUnknownSection},
		{"listed task misspelled", "[FetchTasks]\n0=Docs\n[Dcos]\nUrl=http://x/\n", 2, "FetchTasks", "0",
			"config c.cfg:2: [FetchTasks] 0: task Docs has no section [Docs] (did you mean [Dcos]?)", nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("c.cfg", []byte(tc.cfg), testTaskKeys)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "%s\nwant prefix\n%s", err, tc.want)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, []any{"c.cfg", tc.line, tc.section, tc.key}, []any{ce.File, ce.Line, ce.Section, ce.Key})
			if tc.sentinel != nil {
				require.ErrorIs(t, err, tc.sentinel)
			}
			require.Equal(t, errors.Is(err, ErrUnknownKey), tc.sentinel == ErrUnknownKey)
		})
	}
}

// Insert and Collect folders beside the data folder and the key, or inside
// the data folder (the defaults), are accepted; a relative one is compared
// from the working folder, as the server uses it.
func TestRequestFoldersBesideTheServersFiles(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"",
		"[Server]\nDataDirectory=/srv/connector/data\n[Security]\nInsertFolders=/srv/connector/import\nCollectFolders=/srv/connector/collect, /srv/connector/data/collect\nAESKeyFile=/etc/connector/aes.ky\n",
		"[Security]\nCollectFolders=data/collect, collected\nInsertFolders=\n",
		"[Server]\nDataDirectory=/srv/data\n[Security]\nCollectFolders=/srv/data-collect\n",
	} {
		_, err := Parse("c.cfg", []byte(text), nil)
		require.NoError(t, err, text)
	}
	_, err := Parse("c.cfg", []byte("[Security]\nCollectFolders=.\n"), nil)
	require.ErrorContains(t, err, "[Security] CollectFolders: . holds [Server] DataDirectory (data)", "the working folder holds the relative default data folder")

	// A symbolic link to the data folder's parent: the data folder does
	// not exist yet.
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "srv"), 0o700))
	require.NoError(t, os.Symlink(filepath.Join(dir, "srv"), filepath.Join(dir, "link")))
	_, err = Parse("c.cfg", []byte("[Server]\nDataDirectory="+filepath.Join(dir, "srv", "data")+"\n[Security]\nCollectFolders="+filepath.Join(dir, "link")+"\n"), nil)
	require.ErrorContains(t, err, "holds [Server] DataDirectory")
}

// An Insert or Collect folder may not hold the configuration file or a
// TLS section's files either: a Collect could replace the configuration
// (the roles and folders of the next start) or the authorities client
// certificates are checked against (reloaded within a minute), and an
// Insert could ingest the configuration's secrets or a private key. The
// error is at the folder's key, or, for a default folder, at the file's.
func TestRequestFoldersHoldNoConfigurationOrTLSFile(t *testing.T) {
	t.Parallel()
	const tls = "[Server]\nDataDirectory=/srv/d\nSSLConfig=TLS\n[TLS]\nSSLCertificate=%s\nSSLPrivateKey=%s\nSSLCACertificate=%s\n[Security]\n"
	for _, tc := range []struct {
		desc, file, cfg string
		line            int
		section, key    string
		want            string
	}{
		{"collect folder holds the configuration", "/srv/connector/connector.cfg", "[Server]\nDataDirectory=/srv/d\n[Security]\nCollectFolders=/srv/out, /srv/connector\n",
			4, "Security", "CollectFolders",
			"config /srv/connector/connector.cfg:4: [Security] CollectFolders: /srv/connector holds the configuration file (/srv/connector/connector.cfg): a Collect could replace the server's configuration (expected folders of their own, such as the default DataDirectory/collect)"},
		{"insert folder holds the configuration", "/srv/connector/etc/connector.cfg", "[Server]\nDataDirectory=/srv/d\n[Security]\nInsertFolders=/srv/connector\n",
			4, "Security", "InsertFolders",
			"config /srv/connector/etc/connector.cfg:4: [Security] InsertFolders: /srv/connector holds the configuration file (/srv/connector/etc/connector.cfg): an Insert could read (and, with AllowTempFileDeletion, delete) the server's configuration"},
		{"insert folder holds a private key", "/etc/c.cfg", fmt.Sprintf(tls, "/etc/tls/cert.pem", "/srv/import/tls/key.pem", "/etc/tls/ca.pem") + "InsertFolders=/srv/import\n",
			9, "Security", "InsertFolders",
			"config /etc/c.cfg:9: [Security] InsertFolders: /srv/import holds [TLS] SSLPrivateKey (/srv/import/tls/key.pem): an Insert could read (and, with AllowTempFileDeletion, delete) a TLS private key"},
		{"collect folder holds the client authorities", "/etc/c.cfg", fmt.Sprintf(tls, "/etc/tls/cert.pem", "/etc/tls/key.pem", "/srv/out/ca.pem") + "CollectFolders=/srv/out\n",
			9, "Security", "CollectFolders",
			"config /etc/c.cfg:9: [Security] CollectFolders: /srv/out holds [TLS] SSLCACertificate (/srv/out/ca.pem): a Collect could replace the authorities TLS peers' certificates are checked against"},
		{"collect folder holds the certificate", "/etc/c.cfg", fmt.Sprintf(tls, "/srv/out/cert.pem", "/etc/tls/key.pem", "/etc/tls/ca.pem") + "CollectFolders=/srv/out\n",
			9, "Security", "CollectFolders",
			"config /etc/c.cfg:9: [Security] CollectFolders: /srv/out holds [TLS] SSLCertificate (/srv/out/cert.pem): a Collect could replace a TLS certificate"},
		{"private key inside the default insert folder", "/etc/c.cfg", fmt.Sprintf(tls, "/etc/tls/cert.pem", "/srv/d/insert/key.pem", "/etc/tls/ca.pem"),
			6, "TLS", "SSLPrivateKey",
			"config /etc/c.cfg:6: [TLS] SSLPrivateKey: /srv/d/insert holds [TLS] SSLPrivateKey (/srv/d/insert/key.pem): an Insert could read"},
		{"configuration inside the default collect folder", "/srv/d/collect/c.cfg", "[Server]\nDataDirectory=/srv/d\n",
			2, "Server", "DataDirectory",
			"config /srv/d/collect/c.cfg:2: [Server] DataDirectory: /srv/d/collect holds the configuration file (/srv/d/collect/c.cfg): a Collect could replace the server's configuration"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.file, []byte(tc.cfg), testTaskKeys)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "%s\nwant prefix\n%s", err, tc.want)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, []any{tc.line, tc.section, tc.key}, []any{ce.Line, ce.Section, ce.Key})
		})
	}
	// Beside the folders, they are accepted; so is the embedded default
	// configuration, which has no file.
	for _, text := range []string{
		fmt.Sprintf(tls, "/etc/tls/cert.pem", "/etc/tls/key.pem", "/etc/tls/ca.pem") + "InsertFolders=/srv/import\nCollectFolders=/srv/out, /srv/d/collect\n",
		"[Server]\nDataDirectory=/srv/d\n[Security]\nCollectFolders=/srv/connector/out\nInsertFolders=/srv/connector/in\n",
	} {
		_, err := Parse("/srv/connector/connector.cfg", []byte(text), testTaskKeys)
		require.NoError(t, err, text)
	}
	_, err := Parse(DefaultName, []byte("[Security]\nCollectFolders=.\n[Server]\nDataDirectory=/srv/d\n"), testTaskKeys)
	require.NoError(t, err)
}

// [Server] Host takes an address or a host name; an IPv6 address may be
// written in brackets, as in a URL, and is listened on without them.
func TestServerHost(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"0.0.0.0": "0.0.0.0", " 10.0.0.5 ": "10.0.0.5", "::": "::", "::1": "::1", "[::1]": "::1",
		"[fe80::1%eth0]": "fe80::1%eth0", "localhost": "localhost", "connector.example.com": "connector.example.com",
	} {
		c, err := Parse("c.cfg", []byte("[Server]\nHost="+v+"\n"), nil)
		require.NoError(t, err, v)
		require.Equal(t, want, c.Server.Host, v)
	}
	for _, v := range []string{"[::1]:7000", "[127.0.0.1]", "host/path", "a b", "user@host"} {
		_, err := Parse("c.cfg", []byte("[Server]\nHost="+v+"\n"), nil)
		require.Error(t, err, v)
	}
}

// Whole-line comments, quoting and line ends, as syntax.go has them.
func TestSyntax(t *testing.T) {
	t.Parallel()
	c, err := Parse("c.cfg", []byte("\xef\xbb\xbf// IDOL comment\r\n  ; indented ini comment\r\n# hash comment\r\n"+
		"[Logging]\r\nLogFile = \"a // b ; c # d\"\r\n"+
		"[Server]\nHost='0.0.0.0'\nDataDirectory=\"/srv/con \\\"nector\\\"\"\n"+
		"[T]\nUrl=http://x/#frag;a=b//c\n"), testTaskKeys)
	require.NoError(t, err)
	require.Equal(t, "a // b ; c # d", c.Logging.File, "a quoted value is taken literally")
	require.Equal(t, "0.0.0.0", c.Server.Host)
	require.Equal(t, `/srv/con "nector"`, c.Server.DataDirectory)
	v, _ := c.TaskValue("T", "Url")
	require.Equal(t, "http://x/#frag;a=b//c", v, "//, ; and # not after whitespace are part of the value")
	require.Equal(t, 9, c.Section("T").Line)
	require.Equal(t, 10, c.Section("T").Keys[0].Line)
	require.Equal(t, 9, c.TaskLine("t"))
	require.Equal(t, 10, c.Line("T", "URL"))
	require.Equal(t, 7, c.Line("server", "host"))
	require.Equal(t, 6, c.Line("Server", ""))
	require.Zero(t, c.Line("Server", "Port"))
	require.Zero(t, c.TaskLine("nope"))
}

// A task that only a request runs may have any name but a system
// section's misspelled.
func TestUnlistedTaskSections(t *testing.T) {
	t.Parallel()
	c, err := Parse("c.cfg", []byte("[FetchTasks]\n0=Docs\n[Docs]\nUrl=a\n[Docs2]\nUrl=b\n[Archive]\nDepth=1\n"), testTaskKeys)
	require.NoError(t, err)
	require.Equal(t, []string{"Docs", "Docs2", "Archive"}, c.TaskSections())
	require.Equal(t, 3, c.TaskLine("Docs"), "its section's header")
	// A listed task may live on [FetchTasks] and [Default] alone.
	c, err = Parse("c.cfg", []byte("[FetchTasks]\n0=Docs\nUrl=a\n[Other]\nUrl=b\n"), testTaskKeys)
	require.NoError(t, err)
	require.Equal(t, 2, c.TaskLine("Docs"), "no section: its [FetchTasks] entry")
}

func TestClosest(t *testing.T) {
	t.Parallel()
	for word, want := range map[string]string{
		"Servr": "Server", "sever": "Server", "ACTIONS": "Actions", "Potr": "Port", "Loging": "Logging",
		"Srv": "", "Web": "", "x": "", "Task": "", "Defaults": "Default",
	} {
		require.Equal(t, want, Closest(word, append(systemNames, "Port")), word)
	}
	require.Equal(t, 1, editDistance("potr", "port"), "a swap is one edit")
	require.Equal(t, 3, editDistance("kitten", "sitting"))
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.cfg"), testTaskKeys)
	require.Error(t, err)
	require.Contains(t, err.Error(), "nope.cfg")
	require.True(t, errors.Is(err, os.ErrNotExist))
}

func TestFetchTasksWithoutNumber(t *testing.T) {
	t.Parallel()
	c, err := Parse("c.cfg", []byte("[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://x/\n"), testTaskKeys)
	require.NoError(t, err)
	require.Equal(t, []string{"MyTask"}, c.FetchTasks)
}

func TestBoolAndDuration(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"TRUE", "true", "On", "y", "YES", "1"} {
		b, err := Bool(v)
		require.NoError(t, err)
		require.True(t, b, v)
	}
	for _, v := range []string{"FALSE", "off", "N", "no", "0"} {
		b, err := Bool(v)
		require.NoError(t, err)
		require.False(t, b, v)
	}
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "0.5": 500 * time.Millisecond, "10m": 10 * time.Minute, "7d": 7 * 24 * time.Hour, "1h30m": 90 * time.Minute} {
		d, err := Duration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, d, in)
	}
	for _, bad := range []string{"", "-1", "-5s", "x", "3 days"} {
		_, err := Duration(bad)
		require.Error(t, err, fmt.Sprintf("%q", bad))
	}
}

// TestCommitDelay: [Actions] CommitDelay defaults to 200µs; 0 (never
// wait) and microseconds are accepted.
func TestCommitDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want time.Duration
	}{
		{"", 200 * time.Microsecond},
		{"[Actions]\nCommitDelay=0\n", 0},
		{"[Actions]\nCommitDelay=500us\n", 500 * time.Microsecond},
		{"[Actions]\nCommitDelay=0.1\n", 100 * time.Millisecond},
	} {
		c, err := Parse("x.cfg", []byte(tc.text), testTaskKeys)
		require.NoError(t, err, tc.text)
		require.Equal(t, tc.want, c.Actions.CommitDelay, tc.text)
	}
}

// TestDurationRefusesWhatIsNoDuration: a number of seconds or days that is
// not a number (NaN), infinite, or beyond what a duration holds (about 292
// years) is an error. Converted as it was, each became a negative
// duration without one: [Actions] CommitDelay=1e11 passed its "at most
// 100ms" check and the queue then read it as "never wait".
func TestDurationRefusesWhatIsNoDuration(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"NaN", "inf", "+Inf", "1e11", "9223372037", "1e300d", "Infd", "200000d"} {
		d, err := Duration(bad)
		require.Error(t, err, "%q read as %v", bad, d)
	}
	d, err := Duration("9223372036") // the longest whole number of seconds a duration holds
	require.NoError(t, err)
	require.Equal(t, 9223372036*time.Second, d)
	_, err = Parse("x.cfg", []byte("[Actions]\nCommitDelay=1e11\n"), testTaskKeys)
	require.ErrorContains(t, err, "CommitDelay")
}

// A refused value that is a URL with a password is quoted without it: the
// error is the start-up's last line and the log's (and a Config
// fragment's error reply). IngestHost, Host and AdvertisedAddress quoted
// it whole.
func TestErrorsHideURLPasswords(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"[Ingestion]\nIngesterType=CFS\nIngestHost=http://u:hunter2@cfs\n",
		"[Server]\nHost=http://u:hunter2@h\n",
		"[Cluster]\nAdvertisedAddress=http://u:hunter2@h:1\n",
	} {
		_, err := Parse("c.cfg", []byte(text), nil)
		require.Error(t, err, text)
		require.NotContains(t, err.Error(), "hunter2", text)
		require.Contains(t, err.Error(), "http://u:"+secret.Redacted+"@", text)
	}
}

// A duration refused for its sign or its size says so, whatever its unit:
// "-5" said "must not be negative" but "-5m" said it "is not a duration
// (examples: ...)", and "200000d" was "too long" but "99999999h" was "not
// a duration", as if the syntax were wrong.
func TestDurationSaysWhyItRefuses(t *testing.T) {
	t.Parallel()
	for v, why := range map[string]string{
		"-5":        "must not be negative",
		"-5m":       "must not be negative",
		" -1.5h ":   "must not be negative",
		"-2h30m":    "must not be negative",
		"200000d":   "is too long",
		"99999999h": "is too long",
		"3000000h":  "is too long",
		"1e300ms":   "is not a duration",
		"soon":      "is not a duration",
		"5 m":       "is not a duration",
	} {
		_, err := Duration(v)
		require.ErrorContains(t, err, why, "%q", v)
	}
	d, err := Duration("2562047h")
	require.NoError(t, err)
	require.Equal(t, 2562047*time.Hour, d)
}
