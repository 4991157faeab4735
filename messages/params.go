package messages

import "strings"

// Params is an ordered parameter list as a client sent it. Names compare
// ASCII case-insensitively; when a name repeats, the first occurrence wins
// (docs/protocol.md, "Duplicate parameters").
type Params []*Param

// Get returns the first value of name and whether it was present. Names
// match in ASCII case only (for an ASCII name, as IDOL's are): a Kelvin
// sign is not a k nor a long s an s, as in the codec's action names and
// aci.IsStandardParam. (Equal lengths make strings.EqualFold an ASCII
// comparison here: the only non-ASCII letters that fold to ASCII ones
// take more than one byte.)
func (p Params) Get(name string) (string, bool) {
	for _, kv := range p {
		if len(kv.Name) == len(name) && strings.EqualFold(kv.Name, name) {
			return kv.Value, true
		}
	}
	return "", false
}

// Value returns the first value of name, or "" when absent.
func (p Params) Value(name string) string {
	v, _ := p.Get(name)
	return v
}

// Has reports whether name is present.
func (p Params) Has(name string) bool {
	_, ok := p.Get(name)
	return ok
}

// ASCIISpace is the white space that may surround an action name, a
// parameter name or an enumerated value: ASCII's only. A no-break space or
// an em space around one leaves a spelling that names nothing
// (docs/protocol.md, Requests).
const ASCIISpace = " \t\n\v\f\r"

// TrimASCIISpace returns v without the ASCII white space around it.
func TrimASCIISpace(v string) string { return strings.Trim(v, ASCIISpace) }

// IsValue reports whether v, without the ASCII white space around it, is
// the ASCII word name in any ASCII case: how an enumerated value
// (QueueName=Fetch, ResponseFormat=simpleJson, State=finished, a Boolean)
// is read. A long s or a Kelvin sign spells no s or k, as in Get.
func IsValue(v, name string) bool {
	v = TrimASCIISpace(v)
	return len(v) == len(name) && strings.EqualFold(v, name)
}
