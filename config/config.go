// Package config reads the connector's IDOL-style configuration file
// (connector.cfg): INI sections of Key=Value lines, with `//`, `;` and `#`
// comments, case-insensitive section and key names, IDOL Boolean spellings
// and quoted values.
//
// Loading is strict: an unknown section or key, a key given twice, or a
// value that does not parse stops start-up with an *Error naming the file,
// the section and the key. Sections other than the system ones below are
// fetch task sections; their keys are checked by the TaskKeys function the
// caller passes in (the connector repository knows its own settings).
//
// System sections: [Server], [Actions], [Logging], [Ingestion],
// [FetchTasks] and [Default]. docs/configuration.md lists every key.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// DefaultFile is the embedded configuration used when no -config is given.
//
//go:embed default.cfg
var DefaultFile []byte

// DefaultName is how errors and GetVersion name the embedded configuration.
const DefaultName = "(embedded default)"

// Config is a loaded, validated configuration.
type Config struct {
	Path      string // file it came from, or DefaultName
	Server    Server
	Actions   Actions
	Logging   Logging
	Ingestion Ingestion
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
}

// Server is [Server].
type Server struct {
	Host            string        // bind address; default 127.0.0.1
	Port            int           // ACI port; default 7000
	DataDirectory   string        // store and default output folder; default "data"
	MaxRequestBytes int           // largest request body; default 64 MiB
	ReadTimeout     time.Duration // default 30s
	WriteTimeout    time.Duration // default 30s
	IdleTimeout     time.Duration // default 120s
	RequestLogSize  int           // entries kept for GetRequestLog; default 1000
	ShutdownTimeout time.Duration // how long running actions get to stop; default 10s
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
}

// Section is one task-level section with its keys in file order.
type Section struct {
	Name string
	Keys []KeyValue
}

// KeyValue is one setting as written in the file.
type KeyValue struct {
	Key, Value string
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

// Error reports a configuration problem at a file, section and key.
type Error struct {
	File, Section, Key string
	Err                error
}

func (e *Error) Error() string {
	switch {
	case e.Key != "" && e.Section == "":
		return fmt.Sprintf("config %s: %s: %v", e.File, e.Key, e.Err)
	case e.Key != "":
		return fmt.Sprintf("config %s: [%s] %s: %v", e.File, e.Section, e.Key, e.Err)
	case e.Section != "":
		return fmt.Sprintf("config %s: [%s]: %v", e.File, e.Section, e.Err)
	default:
		return fmt.Sprintf("config %s: %v", e.File, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownKey is wrapped by the Error for a key nobody understands.
var ErrUnknownKey = errors.New("unknown key")

// TaskKeysFunc validates one setting that may appear in a task section,
// [FetchTasks] or [Default]. It returns ErrUnknownKey (possibly wrapped) for
// keys it does not know, or another error for a bad value.
type TaskKeysFunc func(key, value string) error

// Load reads path, or the embedded default when path is "".
func Load(path string, taskKeys TaskKeysFunc) (*Config, error) {
	if path == "" {
		return Parse(DefaultName, DefaultFile, taskKeys)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return Parse(path, data, taskKeys)
}

// Parse reads configuration text; name is used in errors.
func Parse(name string, data []byte, taskKeys TaskKeysFunc) (*Config, error) {
	data, err := decodeText(data)
	if err != nil {
		return nil, &Error{File: name, Err: err}
	}
	f, err := ini.LoadSources(ini.LoadOptions{
		AllowShadows:              true,
		UnescapeValueDoubleQuotes: true,
		SpaceBeforeInlineComment:  true,
		KeyValueDelimiters:        "=",
	}, stripSlashComments(data))
	if err != nil {
		return nil, &Error{File: name, Err: err}
	}
	c := &Config{Path: name, sections: map[string]*Section{}}
	c.setDefaults()
	p := parser{file: name}
	seen := map[string]bool{}
	for _, s := range f.Sections() {
		sname := strings.TrimSpace(s.Name()) // "[MyTask ]" is [MyTask]
		if sname == ini.DefaultSection {
			if len(s.Keys()) > 0 {
				return nil, &Error{File: name, Key: s.Keys()[0].Name(), Err: errors.New("setting outside any [Section]")}
			}
			continue
		}
		lower := strings.ToLower(sname)
		if seen[lower] {
			return nil, &Error{File: name, Section: sname, Err: errors.New("section appears twice")}
		}
		seen[lower] = true
		c.names = append(c.names, sname)
		sec := &Section{Name: sname}
		for _, k := range s.Keys() {
			vals := k.ValueWithShadows()
			if len(vals) > 1 {
				return nil, &Error{File: name, Section: sname, Key: k.Name(), Err: errors.New("key given more than once")}
			}
			for _, other := range sec.Keys {
				if strings.EqualFold(other.Key, k.Name()) {
					return nil, &Error{File: name, Section: sname, Key: k.Name(), Err: errors.New("key given more than once")}
				}
			}
			sec.Keys = append(sec.Keys, KeyValue{Key: k.Name(), Value: strings.TrimSpace(k.Value())})
		}
		p.section = sname
		switch lower {
		case "server":
			err = p.server(&c.Server, sec)
		case "actions":
			err = p.actions(&c.Actions, sec)
		case "logging":
			err = p.logging(&c.Logging, sec)
		case "ingestion":
			err = p.ingestion(&c.Ingestion, sec)
		case "fetchtasks":
			c.sections[lower] = sec
			c.FetchTasks, err = p.fetchTasks(sec, taskKeys)
		default: // [Default] and task sections
			if sname == "" {
				return nil, &Error{File: name, Section: s.Name(), Err: errors.New("section name is empty")}
			}
			c.sections[lower] = sec
			if lower != "default" {
				c.tasks = append(c.tasks, sname)
			}
			err = p.task(sec, taskKeys)
		}
		if err != nil {
			return nil, err
		}
	}
	if c.Ingestion.Directory == "" {
		c.Ingestion.Directory = filepath.Join(c.Server.DataDirectory, "ingest")
	}
	for _, t := range c.FetchTasks {
		if isSystem(t) {
			return nil, &Error{File: name, Section: "FetchTasks", Err: fmt.Errorf("task name %q is a reserved section name", t)}
		}
	}
	return c, nil
}

func (c *Config) setDefaults() {
	c.Server = Server{
		Host: "127.0.0.1", Port: 7000, DataDirectory: "data",
		MaxRequestBytes: 64 << 20, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, RequestLogSize: 1000, ShutdownTimeout: 10 * time.Second,
	}
	c.Actions = Actions{
		MaximumThreads: 4, MaximumQueueSize: 100000, MaximumFinishedActions: 10000,
		FinishedActionMaxAge: 7 * 24 * time.Hour, ProcessingOnRestart: "Rerun", StopTimeout: 5 * time.Second,
	}
	c.Logging = Logging{Level: "info", Format: "text"}
	c.Ingestion = Ingestion{Enabled: true, Type: "IDX", Timeout: 30 * time.Second, BatchSize: 100}
}

func isSystem(name string) bool {
	switch strings.ToLower(name) {
	case "server", "actions", "logging", "ingestion", "fetchtasks", "default":
		return true
	}
	return false
}

// stripSlashComments blanks IDOL's `//` comment lines, which the INI
// library does not know.
func stripSlashComments(data []byte) []byte {
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "//") {
			lines[i] = ""
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

type parser struct {
	file, section string
}

func (p *parser) err(key string, err error) error {
	return &Error{File: p.file, Section: p.section, Key: key, Err: err}
}

func (p *parser) unknown(key string) error { return p.err(key, ErrUnknownKey) }

func (p *parser) server(s *Server, sec *Section) error {
	for _, kv := range sec.Keys {
		var err error
		switch strings.ToLower(kv.Key) {
		case "host":
			if kv.Value == "" {
				err = errors.New("must not be empty")
			}
			s.Host = kv.Value
		case "port":
			s.Port, err = intIn(kv.Value, 0, 65535)
		case "datadirectory":
			if kv.Value == "" {
				err = errors.New("must not be empty")
			}
			s.DataDirectory = kv.Value
		case "maxrequestbytes":
			s.MaxRequestBytes, err = intIn(kv.Value, 1024, 1<<31-1)
		case "readtimeout":
			s.ReadTimeout, err = Duration(kv.Value)
		case "writetimeout":
			s.WriteTimeout, err = Duration(kv.Value)
		case "idletimeout":
			s.IdleTimeout, err = Duration(kv.Value)
		case "requestlogsize":
			s.RequestLogSize, err = intIn(kv.Value, 0, 1<<20)
		case "shutdowntimeout":
			s.ShutdownTimeout, err = Duration(kv.Value)
		default:
			return p.unknown(kv.Key)
		}
		if err != nil {
			return p.err(kv.Key, err)
		}
	}
	return nil
}

func (p *parser) actions(a *Actions, sec *Section) error {
	for _, kv := range sec.Keys {
		var err error
		switch strings.ToLower(kv.Key) {
		case "maximumthreads":
			a.MaximumThreads, err = intIn(kv.Value, 1, 4096)
		case "maximumqueuesize":
			a.MaximumQueueSize, err = intIn(kv.Value, 1, 1<<31-1)
		case "maximumfinishedactions":
			a.MaximumFinishedActions, err = intIn(kv.Value, 0, 1<<31-1)
		case "finishedactionmaxage":
			a.FinishedActionMaxAge, err = Duration(kv.Value)
		case "useinmemorydatastore":
			a.UseInMemoryDatastore, err = Bool(kv.Value)
		case "processingonrestart":
			a.ProcessingOnRestart, err = oneOf(kv.Value, "Rerun", "Error")
		case "stoptimeout":
			a.StopTimeout, err = Duration(kv.Value)
		default:
			return p.unknown(kv.Key)
		}
		if err != nil {
			return p.err(kv.Key, err)
		}
	}
	return nil
}

func (p *parser) logging(l *Logging, sec *Section) error {
	for _, kv := range sec.Keys {
		var err error
		switch strings.ToLower(kv.Key) {
		case "loglevel":
			l.Level, err = oneOf(kv.Value, "debug", "info", "warn", "error")
		case "logformat":
			l.Format, err = oneOf(kv.Value, "text", "json")
		case "logfile":
			l.File = kv.Value
		default:
			return p.unknown(kv.Key)
		}
		if err != nil {
			return p.err(kv.Key, err)
		}
	}
	return nil
}

func (p *parser) ingestion(in *Ingestion, sec *Section) error {
	for _, kv := range sec.Keys {
		var err error
		switch strings.ToLower(kv.Key) {
		case "enableingestion":
			in.Enabled, err = Bool(kv.Value)
		case "ingestertype":
			in.Type, err = oneOf(kv.Value, "IDX", "JSONL", "CFS")
		case "ingestdirectory":
			in.Directory = kv.Value
		case "ingesthost":
			in.Host = kv.Value
		case "ingestport":
			in.Port, err = intIn(kv.Value, 1, 65535)
		case "ingestssl":
			in.SSL, err = Bool(kv.Value)
		case "ingesttimeout":
			in.Timeout, err = Duration(kv.Value)
		case "ingestbatchsize":
			in.BatchSize, err = intIn(kv.Value, 1, 100000)
		default:
			return p.unknown(kv.Key)
		}
		if err != nil {
			return p.err(kv.Key, err)
		}
	}
	if in.Enabled && in.Type == "CFS" && (in.Host == "" || in.Port == 0) {
		return &Error{File: p.file, Section: p.section, Key: "IngestHost", Err: errors.New("IngesterType=CFS needs IngestHost and IngestPort")}
	}
	return nil
}

// fetchTasks reads [FetchTasks]: Number=N and 0=Name, 1=Name, ...; every
// other key is a task setting shared by all tasks.
func (p *parser) fetchTasks(sec *Section, taskKeys TaskKeysFunc) ([]string, error) {
	byIndex := map[int]string{}
	number := -1
	for _, kv := range sec.Keys {
		if strings.EqualFold(kv.Key, "Number") {
			n, err := intIn(kv.Value, 0, 100000)
			if err != nil {
				return nil, p.err(kv.Key, err)
			}
			number = n
			continue
		}
		if i, err := strconv.Atoi(kv.Key); err == nil {
			if i < 0 {
				return nil, p.err(kv.Key, errors.New("task index must not be negative"))
			}
			if kv.Value == "" {
				return nil, p.err(kv.Key, errors.New("task name must not be empty"))
			}
			byIndex[i] = kv.Value
			continue
		}
		if err := p.taskKey(kv, taskKeys); err != nil {
			return nil, err
		}
	}
	if number < 0 { // newer files list tasks without Number
		number = len(byIndex)
	}
	tasks := make([]string, 0, number)
	for i := 0; i < number; i++ {
		name, ok := byIndex[i]
		if !ok {
			return nil, p.err(strconv.Itoa(i), fmt.Errorf("Number=%d but task %d is not listed", number, i))
		}
		tasks = append(tasks, name)
	}
	for i := range byIndex {
		if i >= number {
			return nil, p.err(strconv.Itoa(i), fmt.Errorf("task index %d is not below Number=%d", i, number))
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
		return p.unknown(kv.Key)
	}
	if err := taskKeys(kv.Key, kv.Value); err != nil {
		return p.err(kv.Key, err)
	}
	return nil
}

// Bool parses IDOL's Boolean spellings: TRUE/true/ON/Y/YES/1 and
// FALSE/false/OFF/N/NO/0, case-insensitively.
func Bool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "on", "y", "yes", "1":
		return true, nil
	case "false", "off", "n", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a Boolean (use true or false)", v)
}

// Duration parses a duration: a Go duration ("1.5s", "10m", "2h"), a number
// of days ("7d"), or a plain number of seconds ("30", "0.5").
func Duration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return 0, fmt.Errorf("%q must not be negative", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	if strings.HasSuffix(s, "d") {
		if f, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64); err == nil && f >= 0 {
			return time.Duration(f * 24 * float64(time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (examples: 30, 1.5s, 10m, 2h, 7d)", v)
	}
	return d, nil
}

func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

func oneOf(v string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSpace(v), a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}
