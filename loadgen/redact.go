package loadgen

import (
	"maps"
	"net/url"
	"strings"

	"github.com/connectorhq/connector/secret"
)

// redactQuery returns query (name=value pairs joined by '&', written as
// in a URL or as a workload's template) as the plan and the reports show
// it: the value of a pair whose name looks secret (secret.SensitiveName:
// BasicAuthPassword, [Task]ApiKey, ...) replaced by secret.Redacted, and
// the password and query credentials of a URL in a value too
// (secret.RedactURLs: ?access_token=[REDACTED]), as the
// connector shows the parameters a client sends. What is sent is not
// changed.
func redactQuery(query string) string {
	if !strings.Contains(query, "=") {
		return query
	}
	parts := strings.Split(query, "&")
	changed := false
	for i, p := range parts {
		name, value, ok := strings.Cut(p, "=")
		if !ok || value == "" || value == secret.Redacted {
			continue
		}
		decoded, err := url.QueryUnescape(name)
		if err != nil {
			decoded = name
		}
		if secret.SensitiveName(decoded) {
			parts[i], changed = name+"="+secret.Redacted, true
			continue
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			v = value
		}
		if shown := secret.RedactURLs(v); shown != v {
			if v != value { // it was encoded: keep it so
				shown = url.QueryEscape(shown)
			}
			parts[i], changed = name+"="+shown, true
		}
	}
	if !changed {
		return query
	}
	return strings.Join(parts, "&")
}

// redactVars returns a workload's variables as the report shows them: a
// variable whose name looks secret as secret.Redacted, and secret
// parameters and URL passwords within the others (the scenarios' params)
// redacted as redactQuery does.
func redactVars(vars map[string]string) map[string]string {
	out := maps.Clone(vars)
	for name, v := range out {
		if secret.SensitiveName(name) {
			out[name] = secret.Redacted
		} else {
			out[name] = secret.RedactURLs(redactQuery(v))
		}
	}
	return out
}
