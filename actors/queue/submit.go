package queue

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

// admit is the one check every fetch action passes before it is queued,
// whoever submits it (the ACI front end, the scheduler, Duplicate): its
// FetchAction must be one the repository performs, the repository's
// Validate must accept its parameters (and says which task sections it
// reports on), and its secrets are sealed (fetch.Secrets) so that the
// queue and the store hold them only encrypted. It returns the spec to
// queue; spec is not changed. supported is repo.FetchActions(), read
// once when the queue started (Config.fetchActions; nil: admit asks repo):
// the HTTP connector builds its slice on every call.
func admit(repo fetch.Repository, supported []string, spec *messages.ActionSpec) (*messages.ActionSpec, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: no action to submit", messages.ErrInvalidParam)
	}
	if supported == nil {
		supported = repo.FetchActions()
	}
	// Trimmed of ASCII white space only: Synchronize\u00a0 names no
	// FetchAction (supportedAction).
	fa, ok := supportedAction(supported, messages.TrimASCIISpace(spec.FetchAction))
	if !ok {
		// The value as sent, as every invalid value is quoted, not fa
		// (upper-cased).
		return nil, messages.Invalid("FetchAction", spec.FetchAction, "must be one of "+strings.Join(supported, ", "))
	}
	if err := utf8Params(repo, spec.Params); err != nil {
		return nil, err
	}
	tasks, err := repo.Validate(fa, spec.Params)
	if err != nil {
		return nil, err
	}
	params := spec.Params
	if sec, ok := repo.(fetch.Secrets); ok {
		if params, err = sec.Seal(params); err != nil {
			return nil, err
		}
	}
	action := spec.Action
	if action == "" {
		action = "FETCH"
	}
	return &messages.ActionSpec{Action: action, FetchAction: fa, Params: params, Priority: spec.Priority, Tasks: tasks,
		Client: spec.Client, Role: spec.Role}, nil
}

// supportedAction returns the upper-case form of the fetch action fa (its
// ASCII letters upper-cased) and whether supported holds it; a non-ASCII
// fa never matches. For an ASCII fa (where a case-insensitive
// match is exactly equality after strings.ToUpper) a supported name is
// returned as it is, so that a submission written in another case
// (Synchronize) costs no copy.
func supportedAction(supported []string, fa string) (string, bool) {
	if isASCII(fa) {
		for _, s := range supported {
			if strings.EqualFold(s, fa) && strings.ToUpper(s) == s {
				return s, true
			}
		}
	}
	if !isASCII(fa) {
		// FetchActions are ASCII: a non-ASCII letter that Unicode
		// upper-cases to an ASCII one (long s, dotless i) must not spell
		// one, or FetchAction=ſynchronize would pass a filter that refuses
		// Synchronize and still run it.
		b := []byte(fa)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - 'a' + 'A'
			}
		}
		return string(b), false
	}
	up := strings.ToUpper(fa)
	return up, slices.Contains(supported, up)
}

// utf8Params refuses a parameter whose name or value is not UTF-8 (a
// client's %FF, an encoded surrogate or overlong form, a binary file): the
// queue could not store it (protobuf strings are UTF-8), so that the
// client would be told the store failed for its own bad input, nor send
// it to a peer. The refusal quotes the value as the request log shows it
// (shownValue), never a secret in clear; the value of a parameter whose
// name is not UTF-8 may be anything, a secret included, and is not quoted
// at all. It quotes an excerpt, up to the first bad byte, and says which
// byte that is: the value may be a file of up to [Server] MaxRequestBytes,
// which quoted whole (\xNN for each byte) would make a reply four times
// its size.
func utf8Params(repo fetch.Repository, params messages.Params) error {
	const fix = "percent-encode the UTF-8 bytes of the text"
	for _, p := range params {
		name, value := p.GetName(), p.GetValue()
		if i := badByte(name); i >= 0 {
			return messages.Invalid(strconv.Quote(excerpt(name)), secret.Redacted,
				fmt.Sprintf("the parameter's name is not UTF-8 at byte %d (counting from 1): %s", i+1, fix))
		}
		if i := badByte(value); i >= 0 {
			return messages.Invalid(name, excerpt(shownValue(repo, p)),
				fmt.Sprintf("not UTF-8 at byte %d (counting from 1): %s", i+1, fix))
		}
	}
	return nil
}

// quotedBefore is how many bytes before its first bad byte a refusal of
// text that is not UTF-8 quotes (excerpt).
const quotedBefore = 48

// badByte is the offset of the first byte of s that is not UTF-8, or -1
// when s is UTF-8.
func badByte(s string) int {
	if utf8.ValidString(s) {
		return -1
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
	}
	return -1
}

// excerpt is s as a refusal quotes it: whole when it is short, otherwise
// the quotedBefore bytes before its first bad byte and that byte (or its
// first quotedBefore bytes, when it has none), with "…" where text is
// left out.
func excerpt(s string) string {
	if len(s) <= 2*quotedBefore {
		return s
	}
	end := quotedBefore
	if i := badByte(s); i >= 0 {
		end = i + 1
	}
	start := max(0, end-1-quotedBefore)
	for start > 0 && start < end-1 && !utf8.RuneStart(s[start]) {
		start++ // not half a character
	}
	out := s[start:end]
	if start > 0 {
		out = "…" + out
	}
	if end < len(s) {
		out += "…"
	}
	return out
}

// shownValue is p's value as an error may quote it: secret.Redacted when
// its name looks secret (secret.SensitiveName) or the repository redacts
// it (fetch.Secrets: a setting its schema marks secret, a Config fragment
// holding one), as the request log and GetActionParameters show it.
// (ParamError hides a URL's password itself.)
func shownValue(repo fetch.Repository, p *messages.Param) string {
	if secret.SensitiveName(p.GetName()) {
		return secret.Redacted
	}
	if sec, ok := repo.(fetch.Secrets); ok {
		if r := sec.Redact(messages.Params{p}); len(r) == 1 {
			return r[0].GetValue()
		}
		return secret.Redacted
	}
	return p.GetValue()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
