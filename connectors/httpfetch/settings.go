package httpfetch

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors/internal/restsync"
	"github.com/connectorhq/connector/crawl"
	"github.com/connectorhq/connector/extract"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

// Defaults of the task settings (docs/connectors/http.md, "Task
// settings").
const (
	DefaultDepth          = -1 // unlimited
	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxPageBytes   = 16 << 20
	DefaultConcurrency    = 4
	DefaultMaxRedirects   = 10

	DefaultExtractThreads        = 2
	DefaultExtractTimeout        = 30 * time.Second
	DefaultExtractMaxTextBytes   = 16 << 20
	DefaultExtractMaxMemoryBytes = 256 << 20
	DefaultExtractMaxPages       = 10_000
)

// settings are one task's effective settings for one action: the
// configuration file, overridden by a Config fragment, overridden by
// request parameters.
type settings struct {
	Task string // upper case

	URLs               []string
	SitemapURLs        []string
	FollowSitemaps     bool
	Depth              int
	StayOnSite         bool
	SpiderMustHave     *regexp.Regexp
	SpiderCantHave     *regexp.Regexp
	URLMustHave        *regexp.Regexp
	URLCantHave        *regexp.Regexp
	FollowRobots       bool
	IgnoreRobotsErrors bool
	PageDelay          time.Duration
	MaxPages           int
	MaxBytesPerSec     int64
	RequestTimeout     time.Duration
	MaxPageBytes       int64
	UserAgent          string
	Concurrency        int
	ContentTypes       []string
	MaxRedirects       int // 0: redirects are not followed
	// SessionParams are the query parameters removed from every URL as
	// session ids (crawl.Config.SessionParams): nil, the crawl's
	// defaults; empty, none.
	SessionParams []string

	// HTTP Basic credentials, sent to the origins of URLs only.
	BasicUser, BasicPassword string
	// OverrideOrigins are the origins (scheme://host:port) a request may
	// point the task's start URLs at; nil: the origins of the file's own
	// start URLs.
	OverrideOrigins []string

	// fromRequest records the settings a request (override or Config
	// fragment) set, by lower-case canonical key, with where and how they
	// were written, for the override rules (checkRequestSettings).
	fromRequest map[string]requested

	ExtractText           bool
	ExtractFormats        []extract.Format
	ExtractThreads        int
	ExtractTimeout        time.Duration
	ExtractMaxTextBytes   int
	ExtractMaxMemoryBytes int64
	ExtractMaxPages       int

	// Ext holds the task's settings of an Extension (what its
	// NewSettings returned, filled by its keys); nil without one.
	Ext any

	// Schedule keys, validated but kept as written (see Schedules).
	schedStart, schedRepeat, schedCycles string
	hasSchedule                          bool
}

func defaultSettings(task string) *settings {
	return &settings{
		Task:           strings.ToUpper(task),
		Depth:          DefaultDepth,
		StayOnSite:     true,
		FollowRobots:   true,
		RequestTimeout: DefaultRequestTimeout,
		MaxPageBytes:   DefaultMaxPageBytes,
		UserAgent:      crawl.DefaultUserAgent,
		Concurrency:    DefaultConcurrency,
		ContentTypes:   crawl.DefaultContentTypes,
		MaxRedirects:   DefaultMaxRedirects,

		ExtractText:           true,
		ExtractFormats:        extract.Formats,
		ExtractThreads:        DefaultExtractThreads,
		ExtractTimeout:        DefaultExtractTimeout,
		ExtractMaxTextBytes:   DefaultExtractMaxTextBytes,
		ExtractMaxMemoryBytes: DefaultExtractMaxMemoryBytes,
		ExtractMaxPages:       DefaultExtractMaxPages,
	}
}

// ingestible reports whether the page at u is a document (UrlMustHaveRegex
// / UrlCantHaveRegex); other pages are crawled for links only.
func (s *settings) ingestible(u string) bool {
	if s.URLMustHave != nil && !s.URLMustHave.MatchString(u) {
		return false
	}
	return s.URLCantHave == nil || !s.URLCantHave.MatchString(u)
}

// requested is a setting a request wrote.
type requested struct {
	src   source
	value string
}

// basicAuth is the crawl's Basic credentials: for the origins of the
// task's start URLs.
func (s *settings) basicAuth() *crawl.BasicAuth {
	if s.BasicUser == "" && s.BasicPassword == "" {
		return nil
	}
	return &crawl.BasicAuth{Username: s.BasicUser, Password: s.BasicPassword, Origins: s.URLs}
}

// crawlConfig is the crawl of a Synchronize of this task.
func (s *settings) crawlConfig() crawl.Config {
	redirects := s.MaxRedirects
	if redirects == 0 {
		redirects = -1 // crawl: negative disables
	}
	return crawl.Config{
		StartURLs:           s.URLs,
		SitemapURLs:         s.SitemapURLs,
		FollowSitemaps:      s.FollowSitemaps,
		Depth:               s.Depth,
		StayOnSite:          s.StayOnSite,
		SpiderMustHave:      s.SpiderMustHave,
		SpiderCantHave:      s.SpiderCantHave,
		FollowRobots:        s.FollowRobots,
		DeliverNoIndex:      true, // recorded, not indexed (syncRun.onPage)
		IgnoreRobotsErrors:  s.IgnoreRobotsErrors,
		PageDelay:           s.PageDelay,
		MaxBytesPerSec:      s.MaxBytesPerSec,
		RequestTimeout:      s.RequestTimeout,
		MaxPageSize:         s.MaxPageBytes,
		UserAgent:           s.UserAgent,
		Concurrency:         s.Concurrency,
		AllowedContentTypes: s.ContentTypes,
		MaxRedirects:        redirects,
		BasicAuth:           s.basicAuth(),
		SessionParams:       s.SessionParams,
	}
}

// keySpec describes one task setting.
type keySpec struct {
	name     string // canonical spelling, as documented
	apply    func(s *settings, v string) error
	schedule bool // a schedule key: file only, never a request override
	fileOnly bool // set in the configuration file only, never by a request
	// secret: the value is a password or token. It may be given in IDOL's
	// encrypted form; apply receives it decrypted (TaskKeys checks the
	// form only); it is never shown, logged or stored in clear.
	secret bool
	// checkRequest, when set, checks a value a request set against the
	// [Security] ceilings (an Extension's Key.CheckRequest).
	checkRequest func(sec config.Security, ext any) error
}

// keySpecs are the task settings other than the start URLs, in the order
// they are resolved.
var keySpecs = []*keySpec{
	{name: "Depth", apply: func(s *settings, v string) (err error) {
		s.Depth, err = intIn(v, -1, math.MaxInt32, "-1 (unlimited) or a whole number of links from a start URL")
		return err
	}},
	{name: "SitemapUrl", apply: func(s *settings, v string) error {
		if strings.TrimSpace(v) == "" {
			s.SitemapURLs = nil
			return nil
		}
		urls, err := parseURLs(v)
		if err != nil {
			return err
		}
		s.SitemapURLs = urls
		return nil
	}},
	{name: "FollowSitemaps", apply: func(s *settings, v string) (err error) { s.FollowSitemaps, err = config.Bool(v); return err }},
	{name: "StayOnSite", apply: func(s *settings, v string) (err error) { s.StayOnSite, err = config.Bool(v); return err }},
	{name: "SpiderUrlMustHaveRegex", apply: func(s *settings, v string) (err error) { s.SpiderMustHave, err = compileRegex(v); return err }},
	{name: "SpiderUrlCantHaveRegex", apply: func(s *settings, v string) (err error) { s.SpiderCantHave, err = compileRegex(v); return err }},
	{name: "UrlMustHaveRegex", apply: func(s *settings, v string) (err error) { s.URLMustHave, err = compileRegex(v); return err }},
	{name: "UrlCantHaveRegex", apply: func(s *settings, v string) (err error) { s.URLCantHave, err = compileRegex(v); return err }},
	{name: "FollowRobotProtocol", apply: func(s *settings, v string) (err error) { s.FollowRobots, err = config.Bool(v); return err }},
	{name: "IgnoreRobotProtocolErrors", apply: func(s *settings, v string) (err error) {
		s.IgnoreRobotsErrors, err = config.Bool(v)
		return err
	}},
	{name: "PageDelay", apply: func(s *settings, v string) (err error) { s.PageDelay, err = config.Duration(v); return err }},
	{name: "MaxPages", apply: func(s *settings, v string) (err error) {
		s.MaxPages, err = intIn(v, 0, math.MaxInt32, "0 (no limit) or a positive whole number")
		return err
	}},
	{name: "MaxKBytesPerSec", apply: func(s *settings, v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > math.MaxInt64/1024 {
			return errors.New("must be 0 (no limit) or a positive number of kilobytes (1024 bytes) per second")
		}
		s.MaxBytesPerSec = int64(f * 1024)
		if f > 0 && s.MaxBytesPerSec == 0 {
			s.MaxBytesPerSec = 1
		}
		return nil
	}},
	{name: "RequestTimeout", apply: func(s *settings, v string) error {
		d, err := config.Duration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("must be positive")
		}
		s.RequestTimeout = d
		return nil
	}},
	{name: "MaxPageBytes", apply: func(s *settings, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n <= 0 {
			return errors.New("must be a positive whole number of bytes")
		}
		s.MaxPageBytes = n
		return nil
	}},
	{name: "UserAgent", apply: func(s *settings, v string) error {
		v = strings.TrimSpace(v)
		if v == "" {
			return errors.New("must not be empty")
		}
		if err := probe(crawl.Config{UserAgent: v}); err != nil {
			return err
		}
		s.UserAgent = v
		return nil
	}},
	{name: "Concurrency", apply: func(s *settings, v string) (err error) {
		s.Concurrency, err = intIn(v, 1, 256, "a whole number of requests in flight, 1 to 256")
		return err
	}},
	{name: "AllowedContentTypes", apply: func(s *settings, v string) error {
		types := splitCSV(v)
		if len(types) == 0 {
			return errors.New(`must list at least one media type, e.g. "text/html,text/plain" or "*/*"`)
		}
		if err := probe(crawl.Config{AllowedContentTypes: types}); err != nil {
			return err
		}
		s.ContentTypes = types
		return nil
	}},
	{name: "MaxRedirects", apply: func(s *settings, v string) (err error) {
		s.MaxRedirects, err = intIn(v, 0, 100, "0 (do not follow redirects) to 100")
		return err
	}},
	{name: "SessionParameters", apply: func(s *settings, v string) error {
		names := splitCSV(v)
		if names == nil {
			names = []string{} // set, and empty: none removed
		}
		if err := probe(crawl.Config{SessionParams: names}); err != nil {
			return err
		}
		s.SessionParams = names
		return nil
	}},
	{name: "BasicAuthUsername", apply: func(s *settings, v string) error {
		if strings.ContainsAny(v, ":\r\n") {
			return errors.New("must be one line without ':' (HTTP Basic authentication)")
		}
		s.BasicUser = strings.TrimSpace(v)
		return nil
	}},
	{name: "BasicAuthPassword", secret: true, apply: func(s *settings, v string) error {
		if err := secret.Check(v); err != nil {
			return err
		}
		if strings.ContainsAny(v, "\r\n") {
			return errors.New("must be one line")
		}
		s.BasicPassword = v
		return nil
	}},
	{name: "OverrideUrlOrigins", fileOnly: true, apply: func(s *settings, v string) error {
		var out []string
		for _, o := range splitCSV(v) {
			n, err := origin(o)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		s.OverrideOrigins = out
		if s.OverrideOrigins == nil {
			s.OverrideOrigins = []string{} // set, and empty: no override
		}
		return nil
	}},
	{name: "ExtractText", apply: func(s *settings, v string) (err error) { s.ExtractText, err = config.Bool(v); return err }},
	{name: "ExtractFormats", apply: func(s *settings, v string) error {
		var fs []extract.Format
		for _, name := range splitCSV(v) {
			f, ok := extract.ParseFormat(name)
			if !ok {
				return fmt.Errorf("%s is not a format: list some of %s", wording.Quote(name), formatNames())
			}
			fs = append(fs, f)
		}
		if len(fs) == 0 {
			return fmt.Errorf("must list at least one of %s (ExtractText=false turns extraction off)", formatNames())
		}
		s.ExtractFormats = fs
		return nil
	}},
	{name: "ExtractThreads", apply: func(s *settings, v string) (err error) {
		s.ExtractThreads, err = intIn(v, 1, 64, "a whole number of documents extracted at once, 1 to 64")
		return err
	}},
	{name: "ExtractTimeout", apply: func(s *settings, v string) error {
		d, err := config.Duration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("must be positive")
		}
		s.ExtractTimeout = d
		return nil
	}},
	{name: "ExtractMaxTextBytes", apply: func(s *settings, v string) (err error) {
		s.ExtractMaxTextBytes, err = intIn(v, 1, math.MaxInt32, "a positive whole number of bytes")
		return err
	}},
	{name: "ExtractMaxMemoryBytes", apply: func(s *settings, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 16<<20 {
			return errors.New("must be a whole number of bytes, at least 16777216 (16 MiB)")
		}
		s.ExtractMaxMemoryBytes = n
		return nil
	}},
	{name: "ExtractMaxPages", apply: func(s *settings, v string) (err error) {
		s.ExtractMaxPages, err = intIn(v, 1, math.MaxInt32, "a positive whole number of pages")
		return err
	}},
	{name: "ScheduleStartTime", schedule: true, apply: func(s *settings, v string) error {
		if _, err := parseStartTime(v, time.Now()); err != nil {
			return err
		}
		s.schedStart, s.hasSchedule = v, true
		return nil
	}},
	{name: "ScheduleRepeatSecs", schedule: true, apply: func(s *settings, v string) error {
		if _, err := intIn(v, 1, math.MaxInt32, "a positive whole number of seconds"); err != nil {
			return err
		}
		s.schedRepeat, s.hasSchedule = v, true
		return nil
	}},
	{name: "ScheduleCycles", schedule: true, apply: func(s *settings, v string) error {
		if _, err := intIn(v, -1, math.MaxInt32, "-1 (unlimited), 0 (disabled) or a positive number of runs"); err != nil {
			return err
		}
		s.schedCycles, s.hasSchedule = v, true
		return nil
	}},
}

// Schema is the set of task settings of a connector built on this
// package: the HTTP connector's, and those of an Extension (the Web
// connector's). It validates settings without a repository (a
// connector's Descriptor.TaskKeys and Check).
type Schema struct {
	specs  []*keySpec
	byName map[string]*keySpec
	names  []string // documented spellings, for "did you mean" hints
	ext    *Extension
	doc    string // the documentation page errors point to
}

// httpSchema is the HTTP connector's.
var httpSchema = NewSchema(nil)

// NewSchema returns the HTTP connector's task settings plus ext's (nil:
// the HTTP connector's only). An extension key with the name of an HTTP
// setting panics (a programming error).
func NewSchema(ext *Extension) *Schema {
	sc := &Schema{byName: map[string]*keySpec{}, names: []string{"Url"}, ext: ext, doc: "docs/connectors/http.md"}
	specs := slices.Clone(keySpecs)
	if ext != nil {
		if ext.Doc != "" {
			sc.doc = ext.Doc
		}
		for _, k := range ext.Keys {
			apply := k.Apply
			spec := &keySpec{name: k.Name, secret: k.Secret, fileOnly: k.FileOnly, checkRequest: k.CheckRequest}
			spec.apply = func(s *settings, v string) error { return apply(s.Ext, v) }
			specs = append(specs, spec)
		}
	}
	for _, k := range specs {
		low := strings.ToLower(k.name)
		if _, dup := sc.byName[low]; dup {
			panic("httpfetch: task setting " + k.name + " defined twice")
		}
		sc.byName[low] = k
		sc.names = append(sc.names, k.name)
	}
	sc.specs = specs
	return sc
}

// defaults returns a task's settings before any is applied.
func (sc *Schema) defaults(task string) *settings {
	s := defaultSettings(task)
	if sc.ext != nil && sc.ext.NewSettings != nil {
		s.Ext = sc.ext.NewSettings()
	}
	return s
}

// spec returns the keySpec of a setting name (any case), or nil.
func (sc *Schema) spec(key string) *keySpec {
	key = strings.TrimSpace(key)
	// Lower-cased on the stack when it can be: the request log redacts
	// every request's parameters through here.
	var buf [64]byte
	if len(key) <= len(buf) {
		b := buf[:len(key)]
		for i := range len(key) {
			c := key[i]
			if c >= 0x80 {
				return sc.byName[strings.ToLower(key)]
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		return sc.byName[string(b)]
	}
	return sc.byName[strings.ToLower(key)]
}

func formatNames() string {
	names := make([]string, len(extract.Formats))
	for i, f := range extract.Formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// urlKeyIndex reports whether key is a start URL key: "Url" (index -1) or
// "UrlN" with N a whole number.
func urlKeyIndex(key string) (int, bool) {
	if len(key) < 3 || !strings.EqualFold(key[:3], "url") {
		return 0, false
	}
	rest := key[3:]
	if rest == "" {
		return -1, true
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n > math.MaxInt32 {
		return 0, false
	}
	return n, true
}

// knownKey returns the canonical spelling of a task setting, or "".
func (sc *Schema) knownKey(key string) string {
	if i, ok := urlKeyIndex(key); ok {
		if i < 0 {
			return "Url"
		}
		return "Url" + strconv.Itoa(i)
	}
	if k := sc.spec(key); k != nil {
		return k.name
	}
	return ""
}

// TaskKeys validates one task setting of the HTTP connector as it
// appears in a task section, [FetchTasks] or [Default] (config.Load calls
// it for every such key). Keys are case-insensitive. An unknown key
// returns an error wrapping config.ErrUnknownKey; a bad value returns an
// error saying what is expected. docs/connectors/http.md, "Task
// settings", lists the keys.
func TaskKeys(key, value string) error { return httpSchema.TaskKeys(key, value) }

// TaskKeys is the config.TaskKeysFunc of the schema's settings (see the
// package function TaskKeys).
func (sc *Schema) TaskKeys(key, value string) error {
	if _, ok := urlKeyIndex(key); ok {
		_, err := parseURLs(value)
		return err
	}
	k := sc.spec(key)
	if k == nil {
		hint := ""
		if near := config.Closest(key, sc.names); near != "" {
			hint = " (did you mean " + near + "?)"
		}
		return fmt.Errorf("%w: %s is not a fetch task setting%s; %s lists them", config.ErrUnknownKey, wording.Clip(key), hint, sc.doc)
	}
	return k.apply(sc.defaults(""), value)
}

// parseURLs reads a CSV of start URLs.
func parseURLs(v string) ([]string, error) {
	urls := splitCSV(v)
	if len(urls) == 0 {
		return nil, errors.New("must list at least one absolute http or https URL")
	}
	if secret.HasURLPassword(v) {
		// A URL is a document's reference: stored, logged, delivered.
		return nil, errors.New("a start URL must not carry a password (user:password@); set BasicAuthUsername and BasicAuthPassword")
	}
	if err := probe(crawl.Config{StartURLs: urls}); err != nil {
		return nil, err
	}
	return urls, nil
}

// probe validates the fields set in c with the crawl's own rules; fields
// left zero are valid. It returns the first problem's reason.
func probe(c crawl.Config) error {
	if c.StartURLs == nil {
		c.StartURLs = []string{"http://127.0.0.1/"}
	}
	err := c.Validate()
	if err == nil {
		return nil
	}
	var pe *messages.ParamError
	if errors.As(err, &pe) {
		return errors.New(pe.Reason)
	}
	return err
}

func intIn(v string, lo, hi int, want string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, errors.New("must be " + want)
	}
	return n, nil
}

// splitCSV splits a comma-separated list, trimming spaces and dropping
// empty entries.
func splitCSV(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") { // no slice of the parts: one allocation for one value, none for ""
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Regexes are compiled once per distinct pattern and process, anchored at
// both ends: the connector's URL regexes must match the whole URL, as
// IDOL's do (write ".*example\.com.*" to match anywhere).
var (
	regexMu    sync.Mutex
	regexCache = map[string]*regexp.Regexp{}
)

// regexCacheMax bounds the cache, which request overrides could otherwise
// grow without limit.
const regexCacheMax = 1024

// CompileRegex compiles a task setting's regular expression as the
// connector's URL regexes are (anchored at both ends, Go RE2 syntax, an
// empty pattern is nil), for an Extension's keys.
func CompileRegex(pattern string) (*regexp.Regexp, error) { return compileRegex(pattern) }

func compileRegex(pattern string) (*regexp.Regexp, error) {
	if strings.TrimSpace(pattern) == "" {
		return nil, nil // an empty value switches the rule off
	}
	regexMu.Lock()
	re, ok := regexCache[pattern]
	regexMu.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, fmt.Errorf("not a valid regular expression (Go RE2 syntax): %s", restsync.RegexProblem(err))
	}
	regexMu.Lock()
	if len(regexCache) < regexCacheMax {
		regexCache[pattern] = re
	}
	regexMu.Unlock()
	return re, nil
}

// Where a setting came from, to name it in errors.
const (
	srcFile = iota
	srcFragment
	srcRequest
)

type source struct {
	kind    int
	file    string // srcFile: the configuration file
	line    int    // srcFile: the line of the setting
	section string // as written; "" for an unprefixed request parameter
	key     string // as written
	secret  bool   // the setting is secret: its value is never quoted
}

// name is how a request error names the setting: "[MyTask] Depth", "Depth"
// or "Config [MyTask] Depth".
func (s source) name() string {
	n := s.key
	if s.section != "" {
		n = "[" + s.section + "] " + s.key
	}
	if s.kind == srcFragment {
		n = "Config " + n
	}
	return n
}

// err reports a bad value where it was written: a *config.Error for the
// configuration file, a *messages.ParamError for a request.
func (s source) err(value string, err error) error {
	if s.kind == srcFile {
		return &config.Error{File: s.file, Line: s.line, Section: s.section, Key: s.key, Err: err}
	}
	if s.secret {
		value = secret.Redacted
	}
	return messages.Invalid(s.name(), shownValue(s.key, value), err.Error())
}

// shownValue is value as an error may quote it: the value of a setting
// whose name looks secret is replaced by secret.Redacted, and a URL's
// password is hidden. (Settings the schema marks secret are redacted by
// Schema.shownValue and source.err.)
func shownValue(key, value string) string {
	if secret.SensitiveName(key) {
		return secret.Redacted
	}
	return secret.RedactURLs(value)
}

// shownValue is the package's shownValue, with the schema's secret
// settings redacted too.
func (sc *Schema) shownValue(key, value string) string {
	if sc.isSecretKey(key) {
		return secret.Redacted
	}
	return shownValue(key, value)
}

// isSecretKey reports whether key (a setting name, without a section) is
// a setting the schema marks secret.
func (sc *Schema) isSecretKey(key string) bool {
	k := sc.spec(key)
	return k != nil && k.secret
}

// layer is one place settings come from. Layers are consulted in
// precedence order: request parameters, then the Config fragment, then the
// configuration file.
type layer interface {
	// get returns the value of key for task, and where it was written.
	get(task, key string) (string, source, bool)
	// urls returns the start URL keys (Url, Url0, Url1, ...) of the first
	// section, in this layer's precedence order, that has any.
	urls(task string) ([]config.KeyValue, source, bool)
}

// cfgLayer is a configuration file or Config fragment: the task's section,
// then [FetchTasks], then [Default].
type cfgLayer struct {
	c    *config.Config
	kind int
}

func (l cfgLayer) sections(task string) []*config.Section {
	return []*config.Section{l.c.Section(task), l.c.Section("FetchTasks"), l.c.Section("Default")}
}

func (l cfgLayer) get(task, key string) (string, source, bool) {
	for _, sec := range l.sections(task) {
		if sec == nil {
			continue
		}
		for _, kv := range sec.Keys {
			if strings.EqualFold(kv.Key, key) {
				return kv.Value, source{kind: l.kind, file: l.c.Path, line: kv.Line, section: sec.Name, key: kv.Key}, true
			}
		}
	}
	return "", source{}, false
}

func (l cfgLayer) urls(task string) ([]config.KeyValue, source, bool) {
	for _, sec := range l.sections(task) {
		if sec == nil {
			continue
		}
		var kvs []config.KeyValue
		for _, kv := range sec.Keys {
			if _, ok := urlKeyIndex(kv.Key); ok {
				kvs = append(kvs, kv)
			}
		}
		if len(kvs) > 0 {
			return kvs, source{kind: l.kind, file: l.c.Path, line: kvs[0].Line, section: sec.Name, key: kvs[0].Key}, true
		}
	}
	return nil, source{}, false
}

// override is one request parameter that overrides a task setting.
type override struct {
	section string // as written; "" when unprefixed
	key     string // as written
	value   string
}

// reqLayer holds a request's overrides: [Task]Key, then Key, then
// [FetchTasks]Key, then [Default]Key.
type reqLayer []override

func (l reqLayer) matches(o override, task string, rank int) bool {
	switch rank {
	case 0:
		return o.section != "" && strings.EqualFold(o.section, task)
	case 1:
		return o.section == ""
	case 2:
		return strings.EqualFold(o.section, "FetchTasks")
	default:
		return strings.EqualFold(o.section, "Default")
	}
}

func (l reqLayer) get(task, key string) (string, source, bool) {
	for rank := range 4 {
		for _, o := range l {
			if l.matches(o, task, rank) && strings.EqualFold(o.key, key) {
				return o.value, source{kind: srcRequest, section: o.section, key: o.key}, true
			}
		}
	}
	return "", source{}, false
}

func (l reqLayer) urls(task string) ([]config.KeyValue, source, bool) {
	for rank := range 4 {
		var kvs []config.KeyValue
		var src source
		for _, o := range l {
			if _, ok := urlKeyIndex(o.key); ok && l.matches(o, task, rank) {
				if kvs == nil {
					src = source{kind: srcRequest, section: o.section, key: o.key}
				}
				kvs = append(kvs, config.KeyValue{Key: o.key, Value: o.value})
			}
		}
		if len(kvs) > 0 {
			return kvs, src, true
		}
	}
	return nil, source{}, false
}

// resolve computes task's settings from layers (highest precedence first).
// needURLs requires at least one start URL. key decrypts secret settings
// given in IDOL's encrypted form (nil: there is no key file; an encrypted
// value is then an error).
func (sc *Schema) resolve(task string, layers []layer, needURLs bool, key keyFunc) (*settings, error) {
	s := sc.defaults(task)
	for _, k := range sc.specs {
		for _, l := range layers {
			v, src, ok := l.get(task, k.name)
			if !ok {
				continue
			}
			src.secret = k.secret
			plain := v
			if k.secret && secret.IsEncrypted(v) {
				if err := secret.Check(v); err != nil {
					return nil, src.err(v, err)
				}
				kk, err := key()
				if err == nil {
					plain, err = kk.Decrypt(v)
				}
				if err != nil {
					return nil, src.err(v, err)
				}
			}
			if err := k.apply(s, plain); err != nil {
				return nil, src.err(v, err)
			}
			if src.kind != srcFile {
				if s.fromRequest == nil {
					s.fromRequest = map[string]requested{}
				}
				s.fromRequest[strings.ToLower(k.name)] = requested{src: src, value: v}
			}
			break
		}
	}
	for _, l := range layers {
		kvs, src, ok := l.urls(task)
		if !ok {
			continue
		}
		// Url first, then Url0, Url1, ... in numeric order.
		sort.SliceStable(kvs, func(i, j int) bool {
			a, _ := urlKeyIndex(kvs[i].Key)
			b, _ := urlKeyIndex(kvs[j].Key)
			return a < b
		})
		for _, kv := range kvs {
			urls, err := parseURLs(kv.Value)
			if err != nil {
				src.key, src.line = kv.Key, kv.Line
				return nil, src.err(kv.Value, err)
			}
			s.URLs = append(s.URLs, urls...)
		}
		if src.kind != srcFile {
			if s.fromRequest == nil {
				s.fromRequest = map[string]requested{}
			}
			s.fromRequest["url"] = requested{src: src, value: strings.Join(s.URLs, ",")}
		}
		break
	}
	if needURLs && len(s.URLs) == 0 && len(s.SitemapURLs) == 0 {
		return nil, errNoURL(task, layers)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(s.schedCycles)); (n > 1 || n < 0) && s.schedRepeat == "" {
		return nil, sc.checkErr(task, layers, &SettingError{Key: "ScheduleCycles", Err: errCyclesWithoutRepeat})
	}
	if sc.ext != nil && sc.ext.Check != nil {
		if err := sc.ext.Check(s.Ext); err != nil {
			return nil, sc.checkErr(task, layers, err)
		}
	}
	return s, nil
}

// checkErr reports an Extension.Check error where its key was written
// (the first layer that sets it), else at the task.
func (sc *Schema) checkErr(task string, layers []layer, err error) error {
	var se *SettingError
	if errors.As(err, &se) {
		for _, l := range layers {
			if v, src, ok := l.get(task, se.Key); ok {
				src.secret = sc.isSecretKey(se.Key)
				return src.err(v, se.Err)
			}
		}
		err = fmt.Errorf("%s: %w", se.Key, se.Err)
	}
	for _, l := range layers {
		if cl, ok := l.(cfgLayer); ok && cl.kind == srcFile && len(layers) == 1 {
			return &config.Error{File: cl.c.Path, Line: cl.c.TaskLine(task), Section: task, Err: err}
		}
	}
	return messages.Invalid("["+strings.ToUpper(task)+"]", "", err.Error())
}

// errCyclesWithoutRepeat: ScheduleCycles asks for more than one run of a
// schedule that does not repeat.
var errCyclesWithoutRepeat = errors.New("more than one run (or -1, unlimited) needs ScheduleRepeatSecs, the seconds between two runs (a schedule without it runs once)")

// errNoStartURL: a task to crawl has no start URL.
var errNoStartURL = errors.New("the task has no start URL: set Url (a CSV of URLs) or Url0, Url1, ..., or SitemapUrl")

// errNoURL reports a task without start URLs, as a configuration error
// when only the file was consulted, else as a missing parameter.
func errNoURL(task string, layers []layer) error {
	if len(layers) == 1 {
		if l, ok := layers[0].(cfgLayer); ok && l.kind == srcFile {
			return &config.Error{File: l.c.Path, Line: l.c.TaskLine(task), Section: task, Key: "Url", Err: errNoStartURL}
		}
	}
	return missingURL(task)
}

func missingURL(task string) error {
	return &messages.ParamError{Name: "[" + strings.ToUpper(task) + "] Url", Missing: true, Reason: errNoStartURL.Error()}
}
