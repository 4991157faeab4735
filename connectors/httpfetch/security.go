package httpfetch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	whatwg "github.com/nlnwa/whatwg-url/url"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/internal/wording"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

var _ fetch.Secrets = (*Repository)(nil)

// keyFunc returns the key of IDOL's encrypted-password form.
type keyFunc func() (*secret.Key, error)

// keyring loads [Security] AESKeyFile when first needed: to decrypt a
// secret given encrypted (the file must exist), or to encrypt one a
// request gave in clear (the file is created when missing).
type keyring struct {
	path string
	mu   sync.Mutex
	key  *secret.Key
}

func (k *keyring) get(create bool) (*secret.Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	var key *secret.Key
	var err error
	if create {
		key, err = secret.EnsureKeyFile(k.path)
	} else {
		key, err = secret.LoadKeyFile(k.path)
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: [Security] AESKeyFile %s does not exist", secret.ErrDecrypt, k.path)
		}
	}
	if err != nil {
		return nil, err
	}
	k.key = key
	return key, nil
}

// decryptKey is the keyFunc of resolve.
func (k *keyring) decryptKey() (*secret.Key, error) { return k.get(false) }

// origin normalises an origin or URL to scheme://host:port, the form the
// override rules compare: parsed as the crawl parses URLs (the WHATWG
// parser: the host is the one fetched, in ASCII, IDNA applied, lower case,
// an IPv4 address in dotted decimal), the scheme's default port written out.
// So https://bücher.example and https://xn--bcher-kva.example are one
// origin, and a request cannot name the origin of a task's start URL in a
// form the comparison would not know.
func origin(s string) (string, error) {
	u, err := originParser.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme() != "http" && u.Scheme() != "https") || u.Hostname() == "" {
		return "", fmt.Errorf("%s is not an http or https origin (scheme://host[:port])", wording.Quote(s))
	}
	return u.Scheme() + "://" + u.Hostname() + ":" + strconv.Itoa(u.DecodedPort()), nil
}

// originParser is the crawl's URL parser (crawl/urlnorm.go): a plain
// WHATWG parser.
var originParser = whatwg.NewParser()

// checkRequestSettings applies the override rules to the settings a
// request set (fromRequest), against the task's settings from the file
// (file) and the [Security] ceilings:
//
//   - a start URL must be at an origin (scheme, host, port) the task
//     allows: OverrideUrlOrigins, else the origins of its own start URLs;
//   - StayOnSite cannot be turned off when the file has it on;
//   - MaxPageBytes, Concurrency and RequestTimeout cannot exceed
//     [Security] MaxOverridePageBytes, MaxOverrideConcurrency and
//     MaxOverrideRequestTimeout.
func (r *Repository) checkRequestSettings(s, file *settings) error {
	if len(s.fromRequest) == 0 {
		return nil
	}
	sec := r.cfg.Security
	bad := func(key, reason string) error {
		q := s.fromRequest[key]
		return q.src.err(q.value, errors.New(reason))
	}
	if _, ok := s.fromRequest["url"]; ok {
		allowed := file.OverrideOrigins
		if allowed == nil {
			for _, u := range file.URLs {
				if o, err := origin(u); err == nil {
					allowed = append(allowed, o)
				}
			}
		}
		for _, u := range s.URLs {
			if o, err := origin(u); err != nil || !containsFold(allowed, o) {
				why := fmt.Sprintf("a request may point task %s only at %s (the origins of its configured start URLs, or its OverrideUrlOrigins)", s.Task, strings.Join(allowed, ", "))
				if len(allowed) == 0 {
					why = fmt.Sprintf("task %s allows no start URL from a request (set OverrideUrlOrigins in its section)", s.Task)
				}
				return bad("url", why)
			}
		}
	}
	if _, ok := s.fromRequest["stayonsite"]; ok && file.StayOnSite && !s.StayOnSite {
		return bad("stayonsite", "a request cannot turn StayOnSite off when the configuration has it on")
	}
	if _, ok := s.fromRequest["maxpagebytes"]; ok && s.MaxPageBytes > sec.MaxOverridePageBytes {
		return bad("maxpagebytes", fmt.Sprintf("a request may set at most [Security] MaxOverridePageBytes (%d)", sec.MaxOverridePageBytes))
	}
	if _, ok := s.fromRequest["concurrency"]; ok && s.Concurrency > sec.MaxOverrideConcurrency {
		return bad("concurrency", fmt.Sprintf("a request may set at most [Security] MaxOverrideConcurrency (%d)", sec.MaxOverrideConcurrency))
	}
	if _, ok := s.fromRequest["requesttimeout"]; ok && s.RequestTimeout > sec.MaxOverrideRequestTimeout {
		return bad("requesttimeout", fmt.Sprintf("a request may set at most [Security] MaxOverrideRequestTimeout (%s)", sec.MaxOverrideRequestTimeout.Round(time.Second)))
	}
	for _, k := range r.schema.specs {
		if _, ok := s.fromRequest[strings.ToLower(k.name)]; ok && k.checkRequest != nil {
			if err := k.checkRequest(sec, s.Ext); err != nil {
				return bad(strings.ToLower(k.name), err.Error())
			}
		}
	}
	return nil
}

// secretParam reports whether a request parameter ([Section]Setting or
// Setting) names a secret setting.
func (sc *Schema) secretParam(name string) bool {
	key, ok := paramSetting(name)
	return ok && sc.isSecretKey(key)
}

// paramSetting returns the setting a parameter name addresses: "Key" or
// "[Section]Key" give Key; ok is false for a "[" without its "]".
func paramSetting(name string) (key string, ok bool) {
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, "[") {
		end := strings.IndexByte(name, ']')
		if end < 0 {
			return "", false
		}
		name = name[end+1:]
	}
	return strings.TrimSpace(name), true
}

// ignoredSecret reports whether a parameter looks like a secret
// (secret.SensitiveName) but names no task setting: the action ignores
// it, so its value is never needed, and it is not kept.
func (sc *Schema) ignoredSecret(name string) bool {
	return secret.SensitiveName(name) && sc.ignoredParam(name)
}

// ignoredParam reports whether every fetch action ignores a parameter: it
// is none of an action's own parameters (actionParams), Config or a task
// setting ([Section]Setting or Setting). Its value has no effect, so Seal
// may keep it with its secrets redacted.
func (sc *Schema) ignoredParam(name string) bool {
	if strings.EqualFold(name, "Config") {
		return false
	}
	for _, own := range actionParams {
		if slices.ContainsFunc(own, func(o string) bool { return strings.EqualFold(o, name) }) {
			return false
		}
	}
	key, ok := paramSetting(name)
	return !ok || sc.knownKey(key) == ""
}

// Redact implements fetch.Secrets: the value of every secret setting, in
// an override or inside a Config fragment, becomes secret.Redacted. A
// Config value that cannot be read as a fragment is redacted whole (it
// cannot be shown to be free of secrets).
//
// params itself is returned when nothing in it is secret (every request's
// parameters pass here on their way to the request log); otherwise a copy.
func (r *Repository) Redact(params messages.Params) messages.Params {
	var out messages.Params
	set := func(i int, p *messages.Param) {
		if out == nil {
			out = make(messages.Params, len(params))
			copy(out, params)
		}
		out[i] = p
	}
	for i, p := range params {
		name := strings.TrimSpace(p.GetName())
		switch {
		case r.schema.secretParam(name):
			set(i, &messages.Param{Name: p.GetName(), Value: secret.Redacted})
		case strings.EqualFold(name, "Config"):
			v, err := r.schema.redactFragment(p.GetValue())
			if err != nil {
				v = secret.Redacted
			}
			if v != p.GetValue() {
				set(i, &messages.Param{Name: p.GetName(), Value: v})
			}
		}
	}
	if out == nil {
		return params
	}
	return out
}

// Seal implements fetch.Secrets: every secret setting given in clear, in
// an override or inside a Config fragment, is encrypted with [Security]
// AESKeyFile (created when missing) in IDOL's form, which Run decrypts. A
// value already encrypted is kept as it is. A parameter that the actions
// ignore (ignoredParam, as IDOL connectors ignore parameters they do not
// have) is kept as secret.Redacted when it looks like a secret, and with
// the password and query credentials of every URL in it redacted
// otherwise (secret.RedactURLs: Bogus=http://u:[REDACTED]@h/). params itself is returned when nothing
// in it is to be sealed (every submission passes here); otherwise a copy.
func (r *Repository) Seal(params messages.Params) (messages.Params, error) {
	encrypt := func(v string) (string, error) {
		if secret.IsEncrypted(v) {
			return v, nil
		}
		k, err := r.keys.get(true)
		if err != nil {
			return "", fmt.Errorf("%w: cannot encrypt a secret setting: %v", messages.ErrInternal, err)
		}
		return k.Encrypt(v)
	}
	var out messages.Params // a copy, made at the first parameter that changes
	for i, p := range params {
		name := strings.TrimSpace(p.GetName())
		var v string
		var err error
		switch {
		case r.schema.secretParam(name):
			v, err = encrypt(p.GetValue())
		case strings.EqualFold(name, "Config"):
			v, err = r.schema.rewriteFragment(p.GetValue(), encrypt)
		case r.schema.ignoredSecret(name):
			v = secret.Redacted
		case secret.RedactURLs(p.GetValue()) != p.GetValue() && r.schema.ignoredParam(name):
			v = secret.RedactURLs(p.GetValue())
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		if v != p.GetValue() {
			if out == nil {
				out = slices.Clone(params)
			}
			out[i] = &messages.Param{Name: p.GetName(), Value: v}
		}
	}
	if out == nil {
		return params, nil // nothing to seal: params itself, as Redact does
	}
	return out, nil
}

// rewriteFragment returns a Config value with the value of every secret
// setting replaced by f(value). A fragment without secret settings is
// returned as it is; one with them is written anew (same sections, keys
// and values, comments dropped) and base64-encoded. The fragment is read
// and checked as the action reads it (config.Parse): Seal encrypts what
// the action will decrypt.
func (sc *Schema) rewriteFragment(value string, f func(string) (string, error)) (string, error) {
	data, err := decodeBase64(value)
	if err != nil {
		return "", err
	}
	frag, err := config.Parse("Config parameter", data, sc.TaskKeys)
	if err != nil {
		return "", err
	}
	var secs []*config.Section
	for _, name := range frag.SectionNames() {
		if sec := frag.Section(name); sec != nil {
			secs = append(secs, sec)
		}
	}
	return sc.rewriteSections(value, secs, sc.isSecretKey, f, false)
}

// redactFragment returns a Config value fit to be shown: the value of every
// secret setting, of every key whose name looks secret
// (secret.SensitiveName, as for parameters), and of every key that names
// no setting (a misspelt BasicAuthPasword=, which the action refuses but
// the request log shows), replaced by secret.Redacted; and the password of
// every URL in the other values redacted (secret.RedactURLs).
// It reads the fragment's sections and keys (config.ReadSections) without
// checking what they mean, as config.Parse does: for a fragment the
// action accepted (a queued action's) that finds the same keys, at a cost
// that grows with the text alone. Parse's checks cost about 150 µs per
// task section (each one's settings are worked out), and
// GetActionParameters redacted every listed action's fragment at each
// call: a page of 1000 actions with a small fragment each cost 1.5 s of
// CPU, every time. A fragment that cannot be read is an error (the caller
// hides it whole).
func (sc *Schema) redactFragment(value string) (string, error) {
	data, err := decodeBase64(value)
	if err != nil {
		return "", err
	}
	secs, err := config.ReadSections("Config parameter", data)
	if err != nil {
		return "", err
	}
	hidden := func(key string) bool {
		if _, start := urlKeyIndex(key); start {
			return false
		}
		k := sc.spec(key)
		return k == nil || k.secret || secret.SensitiveName(key)
	}
	return sc.rewriteSections(value, secs, hidden, func(string) (string, error) { return secret.Redacted, nil }, true)
}

// rewriteSections is rewriteFragment's writing: value itself when no key
// of secs is secret (and, with urls, no value holds a URL password or
// query credential), else secs written anew with f applied to the secret
// keys' values (and, with urls, the other values' URLs redacted: secret.RedactURLs, as
// an override's value is shown), base64-encoded.
func (sc *Schema) rewriteSections(value string, secs []*config.Section, isSecret func(string) bool, f func(string) (string, error), urls bool) (string, error) {
	found := false
	for _, sec := range secs {
		for _, kv := range sec.Keys {
			found = found || isSecret(kv.Key) || (urls && secret.RedactURLs(kv.Value) != kv.Value)
		}
	}
	if !found {
		return value, nil
	}
	var b strings.Builder
	for _, sec := range secs {
		b.WriteString("[" + sec.Name + "]\n")
		for _, kv := range sec.Keys {
			v := kv.Value
			switch {
			case isSecret(kv.Key):
				var err error
				if v, err = f(v); err != nil {
					return "", err
				}
			case urls:
				v = secret.RedactURLs(v)
			}
			b.WriteString(kv.Key + "=" + quoteINI(v) + "\n")
		}
	}
	return base64.StdEncoding.EncodeToString([]byte(b.String())), nil
}

// quoteINI writes a value so that the configuration reader reads it back
// unchanged: in double quotes (which it removes), with inner quotes
// escaped.
func quoteINI(v string) string {
	if v == "" || !strings.ContainsAny(v, "\"';#\\ \t") {
		return v
	}
	return `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
}
