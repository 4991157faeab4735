package restsync

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// Key is one task setting of a connector whose settings are S.
type Key[S any] struct {
	Name  string
	Apply func(s *S, v string) error
	// Secret: a password, client secret or token. It may be given in
	// IDOL's encrypted form (decrypted with [Security] AESKeyFile) and is
	// never shown.
	Secret bool
}

// Keys are a connector's task settings, in the order they are resolved.
type Keys[S any] struct {
	// Connector names the connector in errors ("Webex").
	Connector string
	// Doc is the page that lists the settings.
	Doc      string
	List     []*Key[S]
	Defaults func(task string) *S
}

func (k *Keys[S]) find(name string) *Key[S] {
	for _, x := range k.List {
		if strings.EqualFold(x.Name, strings.TrimSpace(name)) {
			return x
		}
	}
	return nil
}

// Names are the settings' names.
func (k *Keys[S]) Names() []string {
	out := make([]string, len(k.List))
	for i, x := range k.List {
		out[i] = x.Name
	}
	return out
}

// IsSecret reports whether name is a secret setting.
func (k *Keys[S]) IsSecret(name string) bool {
	x := k.find(name)
	return x != nil && x.Secret
}

// article is the indefinite article before name: "an Objective task
// setting", "a Webex task setting".
func article(name string) string {
	if name != "" && strings.ContainsRune("AEIOUaeiou", rune(name[0])) {
		return "an"
	}
	return "a"
}

// TaskKeys validates one task setting as it appears in a task section,
// [FetchTasks] or [Default] (a config.TaskKeysFunc). An unknown key wraps
// config.ErrUnknownKey; a bad value says what is expected.
func (k *Keys[S]) TaskKeys(key, value string) error {
	x := k.find(key)
	if x == nil {
		hint := ""
		if near := config.Closest(key, k.Names()); near != "" {
			hint = " (did you mean " + near + "?)"
		}
		return fmt.Errorf("%w: %s is not %s %s task setting%s; %s lists them", config.ErrUnknownKey, wording.Clip(key), article(k.Connector), k.Connector, hint, k.Doc)
	}
	if x.Secret {
		if err := secret.Check(value); err != nil {
			return err
		}
		if secret.IsEncrypted(value) {
			return nil // decrypted when the task is resolved
		}
	}
	return x.Apply(k.Defaults(""), value)
}

// Resolved is a task's settings as the configuration gives them.
type Resolved[S any] struct {
	S   *S
	cfg *config.Config
	// Task is the section name as written.
	Task string
	set  map[string]bool
}

// Set reports whether the configuration gives name for the task.
func (r *Resolved[S]) Set(name string) bool { return r.set[strings.ToLower(name)] }

// Error is a *config.Error about the task's setting name: at the line
// that gives it, else at the task's section.
func (r *Resolved[S]) Error(name string, err error) error {
	if kv, sec, ok := Lookup(r.cfg, r.Task, name); ok {
		return &config.Error{File: r.cfg.Path, Line: kv.Line, Section: sec, Key: kv.Key, Err: err}
	}
	return &config.Error{File: r.cfg.Path, Line: r.cfg.TaskLine(r.Task), Section: r.Task, Key: name, Err: err}
}

// Resolve computes a task's settings: each key from the task's section,
// else [FetchTasks], else [Default]. Secret settings given in IDOL's
// encrypted form are decrypted with key (called only when one is). Errors
// are *config.Error values naming the file, line and key.
func (k *Keys[S]) Resolve(cfg *config.Config, task string, key func() (*secret.Key, error)) (*Resolved[S], error) {
	r := &Resolved[S]{S: k.Defaults(task), cfg: cfg, Task: task, set: map[string]bool{}}
	for _, x := range k.List {
		kv, sec, ok := Lookup(cfg, task, x.Name)
		if !ok {
			continue
		}
		r.set[strings.ToLower(x.Name)] = true
		bad := func(err error) error {
			return &config.Error{File: cfg.Path, Line: kv.Line, Section: sec, Key: kv.Key, Err: err}
		}
		v := kv.Value
		if x.Secret && secret.IsEncrypted(v) {
			kk, err := key()
			if err == nil {
				v, err = kk.Decrypt(v)
			}
			if err != nil {
				return nil, bad(err)
			}
		}
		if err := x.Apply(r.S, v); err != nil {
			return nil, bad(err)
		}
	}
	return r, nil
}

// Lookup finds key for task: its section, [FetchTasks], then [Default].
func Lookup(cfg *config.Config, task, key string) (config.KeyValue, string, bool) {
	for _, name := range []string{task, "FetchTasks", "Default"} {
		sec := cfg.Section(name)
		if sec == nil {
			continue
		}
		for _, kv := range sec.Keys {
			if strings.EqualFold(kv.Key, key) {
				return kv, sec.Name, true
			}
		}
	}
	return config.KeyValue{}, "", false
}

// Bool is a TRUE/FALSE setting.
func Bool[S any](dst func(*S) *bool) func(*S, string) error {
	return func(s *S, v string) (err error) { *dst(s), err = config.Bool(v); return err }
}

// Duration is a positive duration setting (config.Duration's forms).
func Duration[S any](dst func(*S) *time.Duration) func(*S, string) error {
	return func(s *S, v string) error {
		d, err := config.Duration(v)
		if err == nil && d <= 0 {
			err = errors.New("must be positive")
		}
		*dst(s) = d
		return err
	}
}

// DurationOrZero is a duration setting where 0 turns something off.
func DurationOrZero[S any](dst func(*S) *time.Duration) func(*S, string) error {
	return func(s *S, v string) error {
		if strings.TrimSpace(v) == "0" {
			*dst(s) = 0
			return nil
		}
		d, err := config.Duration(v)
		if err == nil && d < 0 {
			err = errors.New("must be 0 or positive")
		}
		*dst(s) = d
		return err
	}
}

// Int is a whole-number setting in [lo, hi]; want says so in words.
func Int[S any](lo, hi int64, want string, dst func(*S) *int64) func(*S, string) error {
	return func(s *S, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < lo || n > hi {
			return errors.New("must be " + want)
		}
		*dst(s) = n
		return nil
	}
}

// URL is an http or https URL without user information.
func URL[S any](dst func(*S) *string) func(*S, string) error {
	return func(s *S, v string) error {
		v = strings.TrimSpace(v)
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("must be an http or https URL")
		}
		if u.User != nil {
			return errors.New("must not carry a user name or password")
		}
		*dst(s) = strings.TrimRight(v, "/")
		return nil
	}
}

// Text is a one-line text setting.
func Text[S any](dst func(*S) *string) func(*S, string) error {
	return func(s *S, v string) error {
		if strings.ContainsAny(v, "\r\n\x00") {
			return errors.New("must be one line")
		}
		*dst(s) = v
		return nil
	}
}

// Scopes is an OAuth 2.0 scope list (separated by spaces or commas), not
// empty.
func Scopes[S any](dst func(*S) *[]string) func(*S, string) error {
	return func(s *S, v string) error {
		*dst(s) = strings.Fields(strings.ReplaceAll(v, ",", " "))
		if len(*dst(s)) == 0 {
			return errors.New("must list at least one scope")
		}
		return nil
	}
}

// RedirectURL is an OAuth 2.0 redirect URL on the loopback interface
// (`connector oauth` listens there).
func RedirectURL[S any](dst func(*S) *string) func(*S, string) error {
	return func(s *S, v string) error {
		if _, _, err := oauth.LoopbackRedirect(strings.TrimSpace(v)); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "oauth: "))
		}
		*dst(s) = strings.TrimSpace(v)
		return nil
	}
}

// OneOf returns the allowed value v names (case-insensitive).
func OneOf(v string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSpace(v), a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
}

// Regex compiles a setting matched against whole names (nil for "").
func Regex(v string) (*regexp.Regexp, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	re, err := regexp.Compile(`^(?:` + v + `)$`)
	if err != nil {
		return nil, fmt.Errorf("not a valid regular expression (Go RE2 syntax, matched against the whole name): %s", RegexProblem(err))
	}
	return re, nil
}

// RegexProblem is what is wrong with a regular expression that does not
// compile (err from regexp.Compile), quoting the part it is about as
// wording.Quote does: Go's error quotes it whole, and it may be the
// whole expression, a megabyte long.
func RegexProblem(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code) + ": " + wording.Quote(se.Expr)
	}
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// CSV splits a comma-separated setting, dropping empty items.
func CSV(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Sensitive reports whether a request parameter may hold a secret: a
// secret task setting's name ([Task]Password too), or any name that looks
// secret (secret.SensitiveName: password, token, key…).
func Sensitive(name string, isSecret func(string) bool) bool {
	n := strings.TrimSpace(name)
	if i := strings.IndexByte(n, ']'); strings.HasPrefix(n, "[") && i > 0 {
		n = n[i+1:]
	}
	return isSecret(n) || secret.SensitiveName(n)
}

// Redact returns params with every parameter that may hold a secret
// replaced by secret.Redacted (fetch.Secrets), and the password and query
// credentials of every URL in a parameter that is no action's own
// (ActionParams) redacted (secret.RedactURLs).
// Requests cannot set task settings, so the connector has no use for
// either.
func Redact(params messages.Params, isSecret func(string) bool) messages.Params {
	out := make(messages.Params, len(params))
	for i, p := range params {
		out[i] = p
		switch {
		case Sensitive(p.GetName(), isSecret):
			out[i] = &messages.Param{Name: p.GetName(), Value: secret.Redacted}
		case secret.RedactURLs(p.GetValue()) != p.GetValue() && !ownParam(p.GetName()):
			out[i] = &messages.Param{Name: p.GetName(), Value: secret.RedactURLs(p.GetValue())}
		}
	}
	return out
}

// ownParam reports whether name is one of a fetch action's own
// parameters (ActionParams).
func ownParam(name string) bool {
	name = strings.TrimSpace(name)
	for _, own := range ActionParams {
		if slices.ContainsFunc(own, func(o string) bool { return strings.EqualFold(o, name) }) {
			return true
		}
	}
	return false
}

// ResolveAll resolves every task of a configuration: the tasks [FetchTasks]
// lists (upper case, in order; a Synchronize without a task runs them) and
// the settings of every task section, by upper-case name.
func ResolveAll[S any](cfg *config.Config, resolve func(cfg *config.Config, task string, key func() (*secret.Key, error)) (*S, error), key func() (*secret.Key, error)) ([]string, map[string]*S, error) {
	set := map[string]*S{}
	var tasks []string
	for _, t := range cfg.FetchTasks {
		name := strings.ToUpper(strings.TrimSpace(t))
		if _, dup := set[name]; dup {
			continue
		}
		s, err := resolve(cfg, t, key)
		if err != nil {
			return nil, nil, err
		}
		tasks = append(tasks, name)
		set[name] = s
	}
	for _, t := range cfg.TaskSections() {
		name := strings.ToUpper(t)
		if _, ok := set[name]; ok {
			continue
		}
		s, err := resolve(cfg, t, key)
		if err != nil {
			return nil, nil, err
		}
		set[name] = s
	}
	return tasks, set, nil
}

// CheckAll resolves every task of a configuration, touching nothing on
// disk beyond reading [Security] AESKeyFile when a secret is given
// encrypted (a connector's Check).
func CheckAll[S any](cfg *config.Config, resolve func(cfg *config.Config, task string, key func() (*secret.Key, error)) (*S, error)) error {
	_, _, err := ResolveAll(cfg, resolve, func() (*secret.Key, error) { return LoadKey(cfg) })
	return err
}

// TaskSettings resolves the configuration and returns the settings of one
// task (for `connector oauth`); an error says when there is no such task.
func TaskSettings[S any](cfg *config.Config, resolve func(cfg *config.Config, task string, key func() (*secret.Key, error)) (*S, error), task string) (*S, error) {
	_, set, err := ResolveAll(cfg, resolve, func() (*secret.Key, error) { return LoadKey(cfg) })
	if err != nil {
		return nil, err
	}
	s := set[strings.ToUpper(strings.TrimSpace(task))]
	if s == nil {
		return nil, fmt.Errorf("there is no task [%s] in %s", task, cfg.Path)
	}
	return s, nil
}

// LoadKey reads the server's AES key ([Security] AESKeyFile), saying so
// when the file is missing.
func LoadKey(cfg *config.Config) (*secret.Key, error) {
	k, err := secret.LoadKeyFile(cfg.Security.AESKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: [Security] AESKeyFile %s does not exist", secret.ErrDecrypt, cfg.Security.AESKeyFile)
	}
	return k, err
}

// KeyOnce loads the server's AES key once, when first needed.
type KeyOnce struct {
	Config *config.Config
	mu     sync.Mutex
	key    *secret.Key
}

// Get returns the key.
func (k *KeyOnce) Get() (*secret.Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	key, err := LoadKey(k.Config)
	if err != nil {
		return nil, err
	}
	k.key = key
	return key, nil
}
