// Package config reads the connector's IDOL-style configuration file
// (connector.cfg): INI sections of Key=Value lines, whole-line comments
// (starting with `//`, `;` or `#`; there are no trailing comments, as in
// IDOL's files), case-insensitive section and key names, IDOL Boolean
// spellings and quoted values. syntax.go has the exact rules.
//
// Loading is strict: a syntax error, an unknown section or key, a key
// given twice, or a value that does not parse stops start-up with an
// *Error naming the file, the line, the section and the key, and saying
// what is expected. Sections other than the system ones below are fetch
// task sections; their keys are checked by the TaskKeys function the
// caller passes in (the connector repository knows its own settings). A
// section that [FetchTasks] does not list and whose name or keys are a
// system section's (a misspelled [Servr]) is an unknown section.
//
// System sections: [Connector], [Server], [Actions], [Logging],
// [Ingestion], [Security], [FetchTasks] and [Default]. [Connector] Type
// names the connector the server runs; the task keys are that
// connector's (ParseFor asks for them once the type is read). The
// connectors carry their own default configurations (package connectors
// loads a file, or the connector's default, for the server).
// docs/configuration.md lists every server-wide key; docs/connectors/
// the task keys of each connector.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectorhq/connector/auth"
	"github.com/connectorhq/connector/internal/netguard"
	"github.com/connectorhq/connector/internal/readfile"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/secret"
)

// DefaultName is how errors and GetVersion name a connector's embedded
// default configuration (used when no -config is given).
const DefaultName = "(embedded default)"

// DefaultType is the connector type of a configuration without
// [Connector] Type.
const DefaultType = "HTTP"

// Config is a loaded, validated configuration.
type Config struct {
	Path      string // file it came from, or DefaultName
	Connector Connector
	Server    Server
	Actions   Actions
	Logging   Logging
	Ingestion Ingestion
	Security  Security
	Service   Service
	Cluster   Cluster
	// Policy holds the roles of [AuthorizationRoles]; nil when the file has
	// no such section (IDOL's default roles apply: auth.Default).
	Policy *auth.Policy
	// FetchTasks lists the task section names of [FetchTasks], in order.
	FetchTasks []string
	// sections holds [FetchTasks], [Default] and every task section, keyed
	// by lower-case name.
	sections map[string]*Section
	// tasks are the task sections' names as written, in file order.
	tasks []string
	// names are every section's name as read, system sections included,
	// in file order.
	names []string
	// entries are the [FetchTasks] entries (0=Name, ...), by lower-case
	// task name.
	entries map[string]KeyValue
	// lines are every setting's line, by lower-case "section\x00key".
	lines map[string]int
}

// Connector is [Connector]: which connector the server runs.
type Connector struct {
	// Type is the connector type, upper case: HTTP (the default), WEB,
	// GOOGLEMAIL, ... (package connectors knows which exist).
	Type string
	// The Web connector's browser (other types ignore them): at most
	// BrowserTabs pages rendered at once (0: one per CPU), the browser
	// closed after BrowserIdleTimeout without a render (default 1m), a
	// tab replaced after BrowserTabMaxPages renders (0: 100), and the
	// browser binary (empty: Debian's chromium-headless-shell, else
	// chromium).
	BrowserTabs        int
	BrowserIdleTimeout time.Duration
	BrowserTabMaxPages int
	BrowserExecutable  string
}

// Server is [Server].
type Server struct {
	Host            string // bind address; default 127.0.0.1
	Port            int    // ACI port; default 7000
	DataDirectory   string // store and default output folder; default "data"
	MaxRequestBytes int    // largest request body; default 64 MiB
	// MaxRequestParameters bounds the parameters of one request (URI and
	// body together); default 1000.
	MaxRequestParameters int
	ReadTimeout          time.Duration // default 30s
	WriteTimeout         time.Duration // default 30s
	IdleTimeout          time.Duration // default 120s
	RequestLogSize       int           // entries kept for GetRequestLog; default 1000
	ShutdownTimeout      time.Duration // how long running actions get to stop; default 10s
	// MaxConnections bounds the ACI port's open connections; 0 (the
	// default) sets it from the file descriptor limit (server package).
	MaxConnections int
	// MaxConnectionsPerClient bounds the ACI port's connections from one
	// client (an IPv4 address, or an IPv6 /64) that holds neither Admin
	// nor ServiceControl (default 64); 0: no bound.
	MaxConnectionsPerClient int
	// MaxReplyBytesPerClient bounds the bytes of large replies (64 KiB or
	// more as sent, compressed or not, a View's document included) such a
	// client has waiting to be sent (default 32 MiB); 0: no bound.
	MaxReplyBytesPerClient int
	// SSLConfig names the TLS section of the ACI port (SSL is that
	// section; nil: plain HTTP).
	SSLConfig string
	SSL       *SSLOptions
	sslLine   int
	// AllowedHosts are the host names and addresses a request's Host header
	// may name (any port); "*" allows every Host. nil: the default
	// (AllowedHostsDefault).
	AllowedHosts []string
}

// Actions is [Actions]: the asynchronous action queue.
type Actions struct {
	MaximumThreads   int // actions running at once; default 4
	MaximumQueueSize int // queued actions accepted; default 100000
	// Retention of ended actions (Finished, Cancelled, Stopped, Error).
	MaximumFinishedActions int           // default 10000; 0 keeps none
	FinishedActionMaxAge   time.Duration // default 7 days; 0 = no age limit
	UseInMemoryDatastore   bool          // default false: durable store on disk
	// ProcessingOnRestart says what happens after a crash to actions that
	// were Processing: "Rerun" (default: queue it again, its task continues
	// from its datastore) or "Error" (end it as Error).
	ProcessingOnRestart string
	// StopTimeout bounds how long a Stop waits for a running action's
	// in-flight work to be aborted before it answers anyway; default 5s.
	StopTimeout time.Duration
	// CommitDelay is how long a durable queue's group commit may wait for
	// more submissions while other clients are submitting
	// (queue.Config.CommitDelay); default 200µs, 0: never waits.
	CommitDelay time.Duration
	// MaxListResults bounds one reply of QueueInfo GetStatus or
	// GetActionParameters without a Token (paged with Start); default 1000.
	MaxListResults int
	// Compaction of the durable store's file (store.Config): compact when
	// at least CompactFreePercent of the file could be reclaimed
	// (default 25; 0: never) and it is at least CompactMinimumSizeMB MiB (default 64);
	// while the server runs a compaction may take CompactTimeout (default
	// 30s), at start-up CompactStartTimeout (default 1m).
	CompactFreePercent   int
	CompactMinimumSizeMB int
	CompactTimeout       time.Duration
	CompactStartTimeout  time.Duration
}

// Logging is [Logging].
type Logging struct {
	Level  string // debug, info, warn, error; default info
	Format string // text or json; default text
	File   string // "" or "-": standard error
}

// Ingestion is [Ingestion]: where Synchronize delivers documents.
type Ingestion struct {
	Enabled   bool          // EnableIngestion; default true
	Type      string        // IngesterType: IDX (default), JSONL, CFS
	Directory string        // IngestDirectory for IDX and JSONL; default DataDirectory/ingest
	Host      string        // IngestHost (CFS)
	Port      int           // IngestPort (CFS)
	SSL       bool          // IngestSSL (CFS)
	Timeout   time.Duration // IngestTimeout (CFS); default 30s
	BatchSize int           // IngestBatchSize: documents per file/request; default 100
	// SSLConfig names the TLS section of outgoing CFS connections
	// (SSLOptions; implies HTTPS).
	SSLConfig  string
	SSLOptions *SSLOptions
	sslLine    int
}

// Security is [Security]: what a request may make the connector touch,
// and the key of its secrets (docs/security.md).
type Security struct {
	// InsertFolders are the folders from which FetchAction=Insert may read
	// the files it names (<type>file or tempfile); default
	// DataDirectory/insert. Empty: Insert reads no file.
	InsertFolders []string
	// CollectFolders are the folders into which FetchAction=Collect may
	// write; default DataDirectory/collect. Empty: Collect writes nothing.
	CollectFolders []string
	// AllowTempFileDeletion lets Insert's <type>tempfile delete the file
	// after ingestion; default false (tempfile is refused).
	AllowTempFileDeletion bool
	// DeniedAddresses are IP addresses, CIDR prefixes and host names the
	// connector never connects to when it fetches pages; default
	// netguard.DefaultDenied (link-local and cloud metadata).
	DeniedAddresses []string
	// AESKeyFile holds the AES-256 key of IDOL's encrypted-password form:
	// secret settings may be given encrypted with it, and the server
	// encrypts request secrets with it before storing them; default
	// DataDirectory/aes.ky, created when first needed.
	AESKeyFile string
	// Ceilings of request overrides (a request may set these task
	// settings up to the ceiling, never above).
	MaxOverridePageBytes      int64         // default 64 MiB
	MaxOverrideConcurrency    int           // default 16
	MaxOverrideRequestTimeout time.Duration // default 5m
}

// Section is one task-level section with its keys in file order.
type Section struct {
	Name string
	Line int // of the [Name] header
	Keys []KeyValue
}

// KeyValue is one setting as written in the file.
type KeyValue struct {
	Key, Value string
	Line       int // 1-based line in the file
}

// Get returns the value of key (case-insensitive).
func (s *Section) Get(key string) (string, bool) {
	if s == nil {
		return "", false
	}
	for _, kv := range s.Keys {
		if strings.EqualFold(kv.Key, key) {
			return kv.Value, true
		}
	}
	return "", false
}

// Section returns the named section ([FetchTasks], [Default] or a task
// section), or nil.
func (c *Config) Section(name string) *Section {
	return c.sections[strings.ToLower(name)]
}

// TaskSections returns the name of every task section of the file (every
// section that is not a system section), in file order. [FetchTasks]
// lists the tasks a plain Synchronize runs; other task sections are used
// when a request names them.
func (c *Config) TaskSections() []string { return append([]string(nil), c.tasks...) }

// SectionNames returns the name of every section of the text, system
// sections included, in the order they were read.
func (c *Config) SectionNames() []string { return append([]string(nil), c.names...) }

// HasTask reports whether name is a configured task section (listed in
// [FetchTasks] or present as a section of its own).
func (c *Config) HasTask(name string) bool {
	if c.Section(name) != nil && !isSystem(name) {
		return true
	}
	for _, t := range c.FetchTasks {
		if strings.EqualFold(t, name) {
			return true
		}
	}
	return false
}

// TaskValue looks a task setting up with IDOL's precedence: the task's own
// section, then [FetchTasks], then [Default].
func (c *Config) TaskValue(task, key string) (string, bool) {
	for _, sec := range []string{task, "FetchTasks", "Default"} {
		if v, ok := c.Section(sec).Get(key); ok {
			return v, true
		}
	}
	return "", false
}

// Line is the line of key in section (of the section's header when key is
// ""), or 0 when the file does not have it: for errors found after loading
// (a value another package checks) to point at it.
func (c *Config) Line(section, key string) int {
	k := strings.ToLower(section)
	if key != "" {
		k += "\x00" + strings.ToLower(key)
	}
	return c.lines[k]
}

// TaskLine is the line that introduces task: its section's header, else its
// [FetchTasks] entry; 0 if neither exists. Errors about a task as a whole
// (it has no start URL) point there.
func (c *Config) TaskLine(task string) int {
	if s := c.Section(task); s != nil {
		return s.Line
	}
	return c.entries[strings.ToLower(task)].Line
}

// Error reports a configuration problem where it was written: the file,
// the line, the section and the key (those that apply), and the reason,
// which says what is expected.
type Error struct {
	File    string
	Line    int // 1-based; 0 when no single line is at fault
	Section string
	Key     string
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	section, key := wording.Clip(e.Section), wording.Clip(e.Key)
	switch {
	case section != "" && key != "":
		b.WriteString("[" + section + "] " + key + ": ")
	case section != "":
		b.WriteString("[" + section + "]: ")
	case key != "":
		b.WriteString(key + ": ")
	}
	// A value is quoted to show what is wrong with it, but not a URL's
	// password (IngestHost=http://user:password@cfs): this text is the
	// start-up's last line, the log's, and for a Config fragment the
	// error reply.
	b.WriteString(secret.RedactURLs(e.Err.Error()))
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownKey is wrapped by the Error for a key nobody understands.
var ErrUnknownKey = errors.New("unknown key")

// ErrUnknownSection is wrapped by the Error for a section that is neither
// a system section nor a fetch task section (typically a misspelled
// system section: [Servr]).
var ErrUnknownSection = errors.New("unknown section")

// TaskKeysFunc validates one setting that may appear in a task section,
// [FetchTasks] or [Default]. It returns ErrUnknownKey (possibly wrapped) for
// keys it does not know, or another error for a bad value.
type TaskKeysFunc func(key, value string) error

// TaskKeysFor returns the task-key check of a connector type ([Connector]
// Type, upper case), or an error saying the type is unknown (and which
// types exist); the error is reported at the Type key.
type TaskKeysFor func(connectorType string) (TaskKeysFunc, error)

// Load reads the file at path with taskKeys checking the task settings,
// whatever its [Connector] Type (package connectors loads a file for the
// connector its Type names).
func Load(path string, taskKeys TaskKeysFunc) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, taskKeys)
}

// MaxFileBytes is the largest configuration file read: far more than
// thousands of task sections take.
const MaxFileBytes = 16 << 20

// ReadFile returns the content of the configuration file at path, or an
// *Error naming it when it cannot be read, is not a regular file (a
// FIFO, which os.ReadFile would wait on for ever, or a device such as
// /dev/zero, which it would read until memory ran out) or holds more
// than MaxFileBytes.
func ReadFile(path string) ([]byte, error) {
	data, err := readfile.Regular(path, MaxFileBytes)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return data, nil
}

// Parse reads configuration text with taskKeys checking the task
// settings, whatever its [Connector] Type; name is used in errors.
func Parse(name string, data []byte, taskKeys TaskKeysFunc) (*Config, error) {
	return ParseFor(name, data, func(string) (TaskKeysFunc, error) { return taskKeys, nil })
}

// read brings configuration text to UTF-8 (decodeText) and splits it
// into sections (scan).
func read(name string, data []byte) ([]*rawSection, error) {
	data, err := decodeText(data)
	var nul *nulError
	if errors.As(err, &nul) {
		return nil, nulAt(name, data, nul)
	}
	if err != nil {
		return nil, &Error{File: name, Err: err}
	}
	return scan(name, data)
}

// nulAt is the error of text (decoded) with a NUL byte: at its line, and
// in its section and key as far as the text before it says them (its
// first syntax error, if it has one: the file's first error).
func nulAt(name string, data []byte, nul *nulError) error {
	start := bytes.LastIndexByte(data[:nul.at], '\n') + 1
	secs, err := scan(name, data[:start])
	if err != nil {
		return err
	}
	e := &Error{File: name, Line: bytes.Count(data[:start], []byte("\n")) + 1, Err: nul}
	line := data[start:]
	if end := bytes.IndexByte(line, '\n'); end >= 0 {
		line = line[:end]
	}
	if len(secs) > 0 && !bytes.HasPrefix(bytes.TrimSpace(line), []byte("[")) {
		e.Section = secs[len(secs)-1].name
		if k, _, ok := bytes.Cut(line, []byte("=")); ok && bytes.IndexByte(k, 0) < 0 && utf8.Valid(k) {
			e.Key = string(bytes.TrimSpace(k))
		}
	}
	return e
}

// ReadSections reads configuration text as Parse reads it, and no
// further: its sections in order, each with its keys and values as the
// reader takes them (trimmed, unquoted), or the syntax error Parse would
// give. Nothing else is checked (which sections and keys exist, what
// their values mean), so its cost is the text's size alone: a reader of a
// text that was checked already (a queued action's Config fragment) needs
// no more.
func ReadSections(name string, data []byte) ([]*Section, error) {
	raw, err := read(name, data)
	if err != nil {
		return nil, err
	}
	out := make([]*Section, len(raw))
	for i, rs := range raw {
		out[i] = &Section{Name: rs.name, Line: rs.line, Keys: rs.keys}
	}
	return out, nil
}

// ParseFor reads configuration text; name is used in errors. [Connector]
// is read first, and keysFor gives the task-key check of the type it
// names.
func ParseFor(name string, data []byte, keysFor TaskKeysFor) (*Config, error) {
	raw, err := read(name, data)
	if err != nil {
		return nil, err
	}
	c := &Config{Path: name, sections: map[string]*Section{}, entries: map[string]KeyValue{}}
	c.setDefaults()
	p := parser{file: name}
	// [Connector] first: the task keys depend on its Type.
	typeLine := 0
	for _, rs := range raw {
		if strings.EqualFold(rs.name, "Connector") {
			p.section = rs.name
			sec := &Section{Name: rs.name, Line: rs.line, Keys: rs.keys}
			if err := p.system(c, systemSection("connector"), sec); err != nil {
				return nil, err
			}
			for _, kv := range rs.keys {
				if strings.EqualFold(kv.Key, "Type") {
					typeLine = kv.Line
				}
			}
		}
	}
	taskKeys, err := keysFor(c.Connector.Type)
	if err != nil {
		e := &Error{File: name, Line: typeLine, Section: "Connector", Key: "Type", Err: err}
		if typeLine == 0 {
			e.Section, e.Key = "", ""
		}
		return nil, e
	}
	refs, err := findOpsRefs(name, raw)
	if err != nil {
		return nil, err
	}
	if err := p.checkRefsExist(c, refs, raw); err != nil {
		return nil, err
	}
	roles := map[string]auth.Role{}
	roleSecs := map[string]*Section{}
	ssl := map[string]*SSLOptions{}
	// [FetchTasks] next: whether a section is a task depends on it.
	for _, rs := range raw {
		if strings.EqualFold(rs.name, "FetchTasks") {
			sec := &Section{Name: rs.name, Line: rs.line, Keys: rs.keys}
			c.sections["fetchtasks"] = sec
			p.section = rs.name
			if c.FetchTasks, err = p.fetchTasks(sec, taskKeys, c.entries); err != nil {
				return nil, err
			}
			p.listed = make(map[string]bool, len(c.FetchTasks))
			for _, t := range c.FetchTasks {
				p.listed[foldKey(t)] = true
			}
		}
	}
	c.lines = map[string]int{}
	for _, rs := range raw {
		sec := &Section{Name: rs.name, Line: rs.line, Keys: rs.keys}
		lower := strings.ToLower(rs.name)
		p.section = rs.name
		c.names = append(c.names, rs.name)
		c.lines[lower] = rs.line
		for _, kv := range rs.keys {
			c.lines[lower+"\x00"+strings.ToLower(kv.Key)] = kv.Line
		}
		if def := systemSection(lower); def != nil {
			if lower == "connector" { // read above
				continue
			}
			if err := p.system(c, def, sec); err != nil {
				return nil, err
			}
			continue
		}
		switch {
		case refs.isRole(rs.name):
			r, err := p.role(sec)
			if err != nil {
				return nil, err
			}
			roles[lower], roleSecs[lower] = r, sec
			continue
		case refs.isSSL(rs.name):
			o, err := p.ssl(sec)
			if err != nil {
				return nil, err
			}
			ssl[lower] = o
			continue
		}
		switch lower {
		case "authorizationroles": // read by findOpsRefs
			continue
		case "fetchtasks": // read above
			continue
		case "default":
		default:
			if err := p.checkTaskSection(c, sec, taskKeys); err != nil {
				return nil, err
			}
			c.tasks = append(c.tasks, rs.name)
		}
		c.sections[lower] = sec
		if err := p.task(sec, taskKeys); err != nil {
			return nil, err
		}
	}
	if c.Ingestion.Directory == "" {
		c.Ingestion.Directory = filepath.Join(c.Server.DataDirectory, "ingest")
	}
	// A folder list the file sets is non-nil, even when empty ("none").
	if c.Security.InsertFolders == nil {
		c.Security.InsertFolders = []string{filepath.Join(c.Server.DataDirectory, "insert")}
	}
	if c.Security.CollectFolders == nil {
		c.Security.CollectFolders = []string{filepath.Join(c.Server.DataDirectory, "collect")}
	}
	if c.Security.AESKeyFile == "" {
		c.Security.AESKeyFile = filepath.Join(c.Server.DataDirectory, "aes.ky")
	}
	if err := p.listedWithoutSection(c); err != nil {
		return nil, err
	}
	if err := p.roles(c, refs, roles, roleSecs); err != nil {
		return nil, err
	}
	if err := p.attachSSL(c, ssl); err != nil {
		return nil, err
	}
	// After attachSSL: the TLS sections' files count too.
	if err := p.requestFolders(c); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) setDefaults() {
	c.Connector = Connector{Type: DefaultType, BrowserIdleTimeout: time.Minute}
	c.Server = Server{
		Host: "127.0.0.1", Port: 7000, DataDirectory: "data",
		MaxRequestBytes: 64 << 20, MaxRequestParameters: 1000, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, RequestLogSize: 1000, ShutdownTimeout: 10 * time.Second,
	}
	c.Actions = Actions{
		MaximumThreads: 4, MaximumQueueSize: 100000, MaximumFinishedActions: 10000,
		FinishedActionMaxAge: 7 * 24 * time.Hour, ProcessingOnRestart: "Rerun", StopTimeout: 5 * time.Second,
		CommitDelay:    200 * time.Microsecond,
		MaxListResults: 1000, CompactFreePercent: 25, CompactMinimumSizeMB: 64, CompactTimeout: 30 * time.Second,
		CompactStartTimeout: time.Minute,
	}
	c.Logging = Logging{Level: "info", Format: "text"}
	c.Service.MaxConnections = 64
	c.Server.MaxConnectionsPerClient = 64
	c.Server.MaxReplyBytesPerClient = 32 << 20
	c.Service.MaxConnectionsPerClient = 16
	c.Cluster.setDefaults()
	c.Ingestion = Ingestion{Enabled: true, Type: "IDX", Timeout: 30 * time.Second, BatchSize: 100}
	c.Security = Security{
		DeniedAddresses:      append([]string(nil), netguard.DefaultDenied...),
		MaxOverridePageBytes: 64 << 20, MaxOverrideConcurrency: 16, MaxOverrideRequestTimeout: 5 * time.Minute,
	}
}

// systemNames are the sections that are not fetch tasks, as documented.
var systemNames = []string{"Connector", "Server", "Actions", "Logging", "Ingestion", "Security", "Service", "Cluster", "AuthorizationRoles", "FetchTasks", "Default"}

// IsSystemSection reports whether name (any case) is a system section, not
// a fetch task section.
func IsSystemSection(name string) bool { return isSystem(name) }

func isSystem(name string) bool {
	for _, s := range systemNames {
		if strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

type parser struct {
	file, section string
	// listed are the tasks [FetchTasks] lists, by foldKey.
	listed map[string]bool
}

func (p *parser) err(kv KeyValue, err error) error {
	return &Error{File: p.file, Line: kv.Line, Section: p.section, Key: kv.Key, Err: err}
}

// system reads one of the system sections of the key table.
func (p *parser) system(c *Config, def *sectionDef, sec *Section) error {
	for _, kv := range sec.Keys {
		k := def.key(kv.Key)
		if k == nil {
			if err := legacyClientKey(kv.Key); err != nil {
				return p.err(kv, err)
			}
			return p.err(kv, fmt.Errorf("%w%s; [%s] takes %s", ErrUnknownKey,
				didYouMean(kv.Key, def.keyNames(), "%s"), def.name, strings.Join(def.keyNames(), ", ")))
		}
		if err := k.set(c, kv.Value); err != nil {
			return p.err(kv, err)
		}
	}
	if def.check != nil {
		return def.check(c, sec, p)
	}
	return nil
}

// checkTaskSection decides whether a section that is not a system section
// may be a fetch task section. One that [FetchTasks] lists is. One that it
// does not list (a task run only when a request names it) is refused as an
// unknown section when its name is a system section's misspelled, or when
// a key it holds is no task setting but a system section's key.
func (p *parser) checkTaskSection(c *Config, sec *Section, taskKeys TaskKeysFunc) error {
	if p.listed[foldKey(sec.Name)] {
		return nil
	}
	expected := "expected one of " + bracketed(systemNames) + ", or a fetch task section"
	if near := Closest(sec.Name, systemNames); near != "" {
		return &Error{File: p.file, Line: sec.Line, Section: sec.Name, Err: fmt.Errorf("%w (did you mean [%s]?): %s",
			ErrUnknownSection, near, expected)}
	}
	for _, kv := range sec.Keys {
		if taskKeys != nil && !errors.Is(taskKeys(kv.Key, kv.Value), ErrUnknownKey) {
			continue
		}
		for _, k := range roleKeys {
			if strings.EqualFold(k, kv.Key) {
				return &Error{File: p.file, Line: kv.Line, Section: sec.Name, Key: kv.Key, Err: fmt.Errorf(
					"%w: %s is a key of a role section, but [AuthorizationRoles] does not list [%s] (expected N=%s there)",
					ErrUnknownSection, kv.Key, wording.Clip(sec.Name), wording.Clip(sec.Name))}
			}
		}
		for _, k := range sslKeys {
			if strings.EqualFold(k, kv.Key) {
				return &Error{File: p.file, Line: kv.Line, Section: sec.Name, Key: kv.Key, Err: fmt.Errorf(
					"%w: %s is a key of a TLS section, but no SSLConfig names [%s] (expected SSLConfig=%s in [Server], [Service] or [Ingestion])",
					ErrUnknownSection, kv.Key, wording.Clip(sec.Name), wording.Clip(sec.Name))}
			}
		}
		for _, def := range systemDefs {
			if def.key(kv.Key) != nil {
				return &Error{File: p.file, Line: kv.Line, Section: sec.Name, Key: kv.Key, Err: fmt.Errorf(
					"%w: %s is a key of [%s], not a fetch task setting (did you mean [%s]?); %s",
					ErrUnknownSection, kv.Key, def.name, def.name, expected)}
			}
		}
	}
	return nil
}

// listedWithoutSection refuses a [FetchTasks] entry that has no section of
// its own while an unlisted section has a name close to it: a misspelling
// would otherwise leave the task without its settings. The comparisons
// are bounded (nearIndex, nearBudget): a text from anyone (a request's
// Config fragment) may list thousands of tasks without sections beside
// thousands of unlisted sections, and comparing each with each took 0.5 s
// for 3,000 of both (83 KB), 75 s for a fragment of 1 MiB. Beyond the
// budget a misspelt task goes unnoticed, as one of no close name does.
func (p *parser) listedWithoutSection(c *Config) error {
	var unlisted []string
	for _, t := range c.tasks {
		if !p.listed[foldKey(t)] {
			unlisted = append(unlisted, t)
		}
	}
	if len(unlisted) == 0 {
		return nil
	}
	index := newNearIndex(unlisted, nearBudget)
	for _, t := range c.FetchTasks {
		if c.Section(t) != nil {
			continue
		}
		if near := index.closest(t); near != "" {
			e := c.entries[strings.ToLower(t)]
			return &Error{File: p.file, Line: e.Line, Section: "FetchTasks", Key: e.Key,
				Err: fmt.Errorf("task %s has no section [%s] (did you mean [%s]?)", wording.Clip(t), wording.Clip(t), near)}
		}
	}
	return nil
}

// requestFolders refuses an InsertFolders or CollectFolders entry that
// holds the server's own files: [Server] DataDirectory (the store, its
// journal, the default log and ingestion folders), [Security] AESKeyFile,
// the configuration file itself, and the files of the TLS sections in use
// (SSLCertificate, SSLPrivateKey, SSLCACertificate). A request may read,
// delete (tempfile) and replace (Collect, with a FileName of its choice)
// files in those folders, so with such an entry a Collect could replace
// connector.db with a fetched page (every action and datastore lost), the
// configuration (the roles and folders of the next start: every limit a
// role and a folder set) or the authorities that client certificates are
// checked against (reloaded within a minute); and an Insert could ingest
// the key of every secret, the configuration's secrets or a TLS private
// key into the index. The paths are compared absolute, with symbolic links
// resolved where they exist. The error is at the folder's key, or, when
// the folder is a default one (inside DataDirectory), at the file's.
func (p *parser) requestFolders(c *Config) error {
	type file struct {
		label, path, what string
		section, key      string // where the file is set, for a default folder
	}
	files := []file{
		{"[Server] DataDirectory", c.Server.DataDirectory, "the store's files", "Server", "DataDirectory"},
		{"[Security] AESKeyFile", c.Security.AESKeyFile, "the key of the secrets", "Security", "AESKeyFile"},
	}
	if c.Path != DefaultName && c.Path != "" {
		files = append(files, file{"the configuration file", c.Path, "the server's configuration", "Server", "DataDirectory"})
	}
	var seen []*SSLOptions
	for _, o := range []*SSLOptions{c.Server.SSL, c.Service.SSL, c.Ingestion.SSLOptions} {
		if o == nil || slices.Contains(seen, o) {
			continue
		}
		seen = append(seen, o)
		for _, f := range []struct{ key, path, what string }{
			{"SSLCertificate", o.Certificate, "a TLS certificate"},
			{"SSLPrivateKey", o.PrivateKey, "a TLS private key"},
			{"SSLCACertificate", o.CACertificate, "the authorities TLS peers' certificates are checked against"},
		} {
			if f.path != "" {
				files = append(files, file{"[" + o.Section + "] " + f.key, f.path, f.what, o.Section, f.key})
			}
		}
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = realPath(f.path)
	}
	for _, use := range []struct {
		key, action string
		folders     []string
	}{
		{"InsertFolders", "an Insert could read (and, with AllowTempFileDeletion, delete)", c.Security.InsertFolders},
		{"CollectFolders", "a Collect could replace", c.Security.CollectFolders},
	} {
		for _, folder := range use.folders {
			dir := realPath(folder)
			for i, f := range files {
				if !within(dir, paths[i]) {
					continue
				}
				e := &Error{File: p.file, Line: c.Line("Security", use.key), Section: "Security", Key: use.key,
					Err: fmt.Errorf("%s holds %s (%s): %s %s (expected folders of their own, such as the default DataDirectory/%s)",
						folder, f.label, f.path, use.action, f.what, strings.ToLower(strings.TrimSuffix(use.key, "Folders")))}
				if e.Line == 0 { // a default folder, and the file inside it
					e.Section, e.Key = f.section, f.key
					e.Line = c.Line(f.section, f.key)
					if o := sslSection(seen, f.section); o != nil {
						e.Line = o.KeyLine(f.key)
					}
				}
				return e
			}
		}
	}
	return nil
}

// sslSection returns the TLS section named name among those in use (nil:
// name is no TLS section).
func sslSection(in []*SSLOptions, name string) *SSLOptions {
	for _, o := range in {
		if o.Section == name {
			return o
		}
	}
	return nil
}

// realPath is path made absolute, with the symbolic links of its longest
// existing prefix resolved (the rest may not exist yet: the data folder is
// created at start-up).
func realPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, rest)
		}
		if filepath.Dir(dir) == dir {
			return abs
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

// within reports whether path is dir or lies inside it (both absolute and
// clean).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func bracketed(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "[" + n + "]"
	}
	return strings.Join(out, ", ")
}

// fetchTasks reads [FetchTasks]: Number=N and 0=Name, 1=Name, ...; every
// other key is a task setting shared by all tasks. entries records each
// task's entry, by lower-case name.
func (p *parser) fetchTasks(sec *Section, taskKeys TaskKeysFunc, entries map[string]KeyValue) ([]string, error) {
	type entry struct {
		name string
		kv   KeyValue
	}
	byIndex := map[int]entry{}
	number := -1
	var numberKV KeyValue
	for _, kv := range sec.Keys {
		if strings.EqualFold(kv.Key, "Number") {
			n, err := intIn(kv.Value, 0, 100000)
			if err != nil {
				return nil, p.err(kv, err)
			}
			number, numberKV = n, kv
			continue
		}
		if i, err := strconv.Atoi(kv.Key); err == nil {
			if i < 0 {
				return nil, p.err(kv, errors.New("task index must not be negative (expected 0, 1, 2, ...)"))
			}
			if kv.Value == "" {
				return nil, p.err(kv, errors.New("task name must not be empty (expected the name of the task's section)"))
			}
			if isSystem(kv.Value) {
				return nil, p.err(kv, fmt.Errorf("task name %s is a reserved section name (%s are not tasks)", wording.Quote(kv.Value), bracketed(systemNames)))
			}
			// 1= and 01= (or +1=) are different keys of one index: the
			// later would replace the earlier, whose task would then be
			// listed nowhere.
			if first, ok := byIndex[i]; ok {
				return nil, p.err(kv, fmt.Errorf("task %d is listed twice (first on line %d, as %s=%s)", i, first.kv.Line, wording.Clip(first.kv.Key), wording.Clip(first.name)))
			}
			byIndex[i] = entry{kv.Value, kv}
			continue
		}
		if err := p.taskKey(kv, taskKeys); err != nil {
			return nil, err
		}
	}
	if number < 0 { // newer files list tasks without Number
		number = len(byIndex)
		// A gap is reported at the first entry after it: the file has
		// no Number to name.
		for i := 0; i < number; i++ {
			if _, ok := byIndex[i]; ok {
				continue
			}
			next := -1
			for j := range byIndex {
				if j > i && (next < 0 || j < next) {
					next = j
				}
			}
			return nil, p.err(byIndex[next].kv, fmt.Errorf("task %d is not listed, but a later one is (without Number, the tasks are numbered 0, 1, 2, ... without a gap: expected %d=TaskName)", i, i))
		}
	}
	tasks := make([]string, 0, number)
	for i := 0; i < number; i++ {
		e, ok := byIndex[i]
		if !ok {
			kv := numberKV
			kv.Key = strconv.Itoa(i)
			return nil, p.err(kv, fmt.Errorf("Number=%d but task %d is not listed (expected %d=TaskName)", number, i, i))
		}
		entries[strings.ToLower(e.name)] = e.kv
		tasks = append(tasks, e.name)
	}
	for i, e := range byIndex {
		if i >= number {
			return nil, p.err(e.kv, fmt.Errorf("task index %d is not below Number=%d", i, number))
		}
	}
	return tasks, nil
}

func (p *parser) task(sec *Section, taskKeys TaskKeysFunc) error {
	for _, kv := range sec.Keys {
		if err := p.taskKey(kv, taskKeys); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) taskKey(kv KeyValue, taskKeys TaskKeysFunc) error {
	if taskKeys == nil {
		return p.err(kv, fmt.Errorf("%w: no fetch task settings are known here", ErrUnknownKey))
	}
	if err := taskKeys(kv.Key, kv.Value); err != nil {
		return p.err(kv, err)
	}
	return nil
}

// Bool parses IDOL's Boolean spellings: TRUE/true/ON/Y/YES/1 and
// FALSE/false/OFF/N/NO/0, case-insensitively, with ASCII white space
// around them. White space other than ASCII's (a no-break space) is no
// part of a spelling: a file's lines are trimmed of it before (scan), but
// a request's setting override is not, and is read as docs/protocol.md
// says every enumerated value is.
func Bool(v string) (bool, error) {
	switch strings.ToLower(trimASCIISpace(v)) {
	case "true", "on", "y", "yes", "1":
		return true, nil
	case "false", "off", "n", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s is not a Boolean (use true or false)", wording.Quote(v))
}

// Duration parses a duration: a Go duration ("1.5s", "10m", "2h"), a number
// of days ("7d"), or a plain number of seconds ("30", "0.5").
func Duration(v string) (time.Duration, error) {
	s := trimASCIISpace(v)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return 0, fmt.Errorf("%s must not be negative", wording.Quote(v))
		}
		return durationOf(v, f, time.Second)
	}
	if strings.HasSuffix(s, "d") {
		if f, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64); err == nil && f >= 0 {
			return durationOf(v, f, 24*time.Hour)
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if abs, ok := strings.CutPrefix(s, "-"); ok {
			if _, err := time.ParseDuration(abs); err == nil {
				return 0, fmt.Errorf("%s must not be negative", wording.Quote(v))
			}
		} else if tooLong(s) {
			return 0, fmt.Errorf("%s is too long (at most %v)", wording.Quote(v), time.Duration(math.MaxInt64))
		}
		return 0, fmt.Errorf("%s is not a duration (examples: 30, 1.5s, 10m, 2h, 7d)", wording.Quote(v))
	}
	if d < 0 {
		return 0, fmt.Errorf("%s must not be negative", wording.Quote(v))
	}
	return d, nil
}

// tooLong reports whether s, which time.ParseDuration refused, is a
// number and one unit ("99999999h") more than a time.Duration holds.
func tooLong(s string) bool {
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"ns", time.Nanosecond}, {"us", time.Microsecond}, {"µs", time.Microsecond}, {"μs", time.Microsecond},
		{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.name); ok {
			if n == "" || strings.Trim(n, "0123456789.") != "" || strings.Count(n, ".") > 1 {
				return false // not the number of a Go duration ("1e300")
			}
			f, err := strconv.ParseFloat(n, 64)
			return err == nil && f*float64(u.d) >= math.MaxInt64
		}
	}
	return false
}

// durationOf is f units (f >= 0, or NaN), or an error when that is not
// a number or more than a time.Duration holds (converted, it would turn
// negative).
func durationOf(v string, f float64, unit time.Duration) (time.Duration, error) {
	ns := f * float64(unit)
	if math.IsNaN(ns) {
		return 0, fmt.Errorf("%s is not a duration (examples: 30, 1.5s, 10m, 2h, 7d)", wording.Quote(v))
	}
	if ns >= math.MaxInt64 { // 2^63 as a float64: the first value a Duration does not hold
		return 0, fmt.Errorf("%s is too long (at most %v)", wording.Quote(v), time.Duration(math.MaxInt64))
	}
	return time.Duration(ns), nil
}

func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(trimASCIISpace(v))
	if err != nil {
		return 0, fmt.Errorf("%s is not a whole number (expected %d to %d)", wording.Quote(v), lo, hi)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range (expected %d to %d)", n, lo, hi)
	}
	return n, nil
}

// int64In is intIn for a range an int of 32-bit platforms does not hold.
func int64In(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(trimASCIISpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not a whole number (expected %d to %d)", wording.Quote(v), lo, hi)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range (expected %d to %d)", n, lo, hi)
	}
	return n, nil
}

func oneOf(v string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if t := trimASCIISpace(v); len(t) == len(a) && strings.EqualFold(t, a) { // equal lengths: ASCII case
			return a, nil
		}
	}
	return "", fmt.Errorf("%s is not one of %s (expected one of them, in any case)", wording.Quote(v), strings.Join(allowed, ", "))
}

// trimASCIISpace is v without the ASCII white space around it (as
// messages.TrimASCIISpace: the values of Bool, Duration and the numbers
// may come from a request's override).
func trimASCIISpace(v string) string { return strings.Trim(v, " \t\n\v\f\r") }
