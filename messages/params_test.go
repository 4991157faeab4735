package messages

import "testing"

func TestParamsGetASCIICaseOnly(t *testing.T) {
	t.Parallel()
	p := Params{{Name: "To\u212aen", Value: "kelvin"}, {Name: "Re\u017fponseFormat", Value: "json"}, {Name: "queuename", Value: "fetch"}}
	if v, ok := p.Get("QueueName"); !ok || v != "fetch" {
		t.Errorf(`Get("QueueName") = %q, %v; want "fetch", true`, v, ok)
	}
	// A Kelvin sign is not a k, a long s not an s: IDOL's parameter names
	// are ASCII, and the codec and IsStandardParam compare them in ASCII.
	for _, name := range []string{"Token", "ResponseFormat"} {
		if v, ok := p.Get(name); ok {
			t.Errorf("Get(%q) = %q, true; want absent", name, v)
		}
	}
}
