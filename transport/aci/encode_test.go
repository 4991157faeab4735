package aci

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// responsedata returns the encoded responsedata of data: the XML between
// the tags, or the JSON value.
func responsedata(t *testing.T, f Format, data ...Node) string {
	t.Helper()
	out, _ := Encode(nil, f, &Reply{Action: "X", Data: data})
	s := string(out)
	switch f {
	case FormatXML:
		const pre = `<response>SUCCESS</response>`
		i := strings.Index(s, pre)
		require.GreaterOrEqual(t, i, 0)
		return strings.TrimSuffix(s[i+len(pre):], "</autnresponse>")
	default:
		require.True(t, json.Valid(out), s)
		i := strings.Index(s, `"responsedata":`)
		require.GreaterOrEqual(t, i, 0)
		return strings.TrimSuffix(s[i+len(`"responsedata":`):], "}}")
	}
}

func TestEncodeEnvelope(t *testing.T) {
	t.Parallel()
	r := &Reply{Action: "GETSTATUS"}
	out, ct := Encode(nil, FormatXML, r)
	require.Equal(t, ContentTypeXML, ct)
	require.Equal(t, `<?xml version='1.0' encoding='UTF-8' ?><autnresponse xmlns:autn="http://schemas.autonomy.com/aci/">`+
		`<action>GETSTATUS</action><response>SUCCESS</response><responsedata/></autnresponse>`, string(out))
	require.NotContains(t, string(out), "DOCTYPE")

	out, ct = Encode(nil, FormatSimpleJSON, r)
	require.Equal(t, ContentTypeJSON, ct)
	require.Equal(t, `{"autnresponse":{"action":"GETSTATUS","response":"SUCCESS","responsedata":{}}}`, string(out))

	out, ct = Encode(nil, FormatJSON, r)
	require.Equal(t, ContentTypeJSON, ct)
	require.Equal(t, `{"autnresponse":{"@xmlns":{"autn":"http://schemas.autonomy.com/aci/"},`+
		`"action":{"$":"GETSTATUS"},"response":{"$":"SUCCESS"},"responsedata":{}}}`, string(out))
}

func TestEncodeAppendsAndDefaults(t *testing.T) {
	t.Parallel()
	dst := []byte("prefix")
	out, _ := Encode(dst, FormatXML, &Reply{Action: "A"})
	require.True(t, strings.HasPrefix(string(out), "prefix<?xml"))

	out, ct := Encode(nil, Format(99), &Reply{Action: "A"})
	require.Equal(t, ContentTypeXML, ct)
	want, _ := Encode(nil, FormatXML, &Reply{Action: "A"})
	require.Equal(t, want, out)

	for _, f := range []Format{FormatXML, FormatSimpleJSON, FormatJSON} {
		out, _ = Encode(nil, f, nil)
		require.Contains(t, string(out), "SUCCESS")
	}
}

func TestEncodeErrorIgnoresData(t *testing.T) {
	t.Parallel()
	now := time.Date(2006, 2, 6, 17, 3, 54, 0, time.UTC)
	r := &Reply{Action: "WOBBLE", Err: &Error{ID: "CONWOBBLE101", Raw: 101, Code: "ERRORNOTIMPLEMENTED",
		String: "s", Description: "d", Time: now}, Data: []Node{TokenNode("ignored")}}
	out, _ := Encode(nil, FormatXML, r)
	require.Equal(t, `<?xml version='1.0' encoding='UTF-8' ?><autnresponse xmlns:autn="http://schemas.autonomy.com/aci/">`+
		`<action>WOBBLE</action><response>ERROR</response><responsedata><error><errorid>CONWOBBLE101</errorid>`+
		`<rawerrorid>0x65</rawerrorid><errorstring>s</errorstring><errordescription>d</errordescription>`+
		`<errorcode>ERRORNOTIMPLEMENTED</errorcode><errortime>06 Feb 06 17:03:54</errortime></error>`+
		`</responsedata></autnresponse>`, string(out))
	out, _ = Encode(nil, FormatSimpleJSON, r)
	require.Equal(t, `{"autnresponse":{"action":"WOBBLE","response":"ERROR","responsedata":{"error":{`+
		`"errorid":"CONWOBBLE101","rawerrorid":"0x65","errorstring":"s","errordescription":"d",`+
		`"errorcode":"ERRORNOTIMPLEMENTED","errortime":"06 Feb 06 17:03:54"}}}}`, string(out))
}

func TestRawErrorID(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0x0", 502: "0x1F6", 525: "0x20D", 255: "0xFF", -1: "-0x1"} {
		require.Equal(t, want, rawErrorID(n))
	}
}

func TestEncodeXMLRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		node Node
		want string
	}{
		{"empty text element", TextNode("x", ""), "<x/>"},
		{"empty container", Container("x"), "<x/>"},
		{"attributes only", Node{Name: "x", Attrs: []Attr{{"b", "2"}, {"a", "1"}}}, `<x b="2" a="1"/>`},
		{"text", TextNode("x", "t"), "<x>t</x>"},
		{"children", Node{Name: "x", Children: []Node{TextNode("a", "1"), TextNode("b", "")}}, "<x><a>1</a><b/></x>"},
		{"mixed", Node{Name: "x", Text: "t", Children: []Node{TextNode("a", "1")}}, "<x>t<a>1</a></x>"},
		{"duplicate attribute written once", Node{Name: "x", Attrs: []Attr{{"a", "1"}, {"a", "2"}}}, `<x a="1"/>`},
		{"attributes equal after sanitising", Node{Name: "x", Attrs: []Attr{{"a b", "1"}, {"a_b", "2"}}}, `<x a_b="1"/>`},
		{"autn prefix kept", TextNode("autn:version", "1"), "<autn:version>1</autn:version>"},
		{"escaping", TextNode("x", `<a&b>"c"'d'`), `<x>&lt;a&amp;b&gt;"c"'d'</x>`},
		{"attribute escaping", Node{Name: "x", Attrs: []Attr{{"a", "<\"&'>\t\n\r"}}}, `<x a="&lt;&quot;&amp;'&gt;&#9;&#10;&#13;"/>`},
		{"text keeps tab and LF, escapes CR", TextNode("x", "a\tb\nc\r\nd"), "<x>a\tb\nc&#13;\nd</x>"},
		{"control characters replaced", TextNode("x", "a\x00b\x1fc\x7f"), "<x>a\uFFFDb\uFFFDc\x7f</x>"},
		{"invalid UTF-8 replaced per byte", TextNode("x", "a\xff\xfeb\xe2\x82"), "<x>a\uFFFD\uFFFDb\uFFFD\uFFFD</x>"},
		{"non-characters replaced", TextNode("x", "\uFFFE\uFFFF\uFFFD"), "<x>\uFFFD\uFFFD\uFFFD</x>"},
		{"valid non-ASCII kept", TextNode("x", "é€😀\u0085\u2028"), "<x>é€😀\u0085\u2028</x>"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got := responsedata(t, FormatXML, tc.node)
			require.Equal(t, "<responsedata>"+tc.want+"</responsedata>", got)
			out, _ := Encode(nil, FormatXML, &Reply{Data: []Node{tc.node}})
			_, err := decodeXML(out, false)
			require.NoError(t, err)
		})
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"action":          "action",
		"time_in_queue":   "time_in_queue",
		"a-b.c9":          "a-b.c9",
		"autn:version":    "autn:version",
		"":                "_",
		"autn:":           "autn:_",
		"1abc":            "_1abc",
		"-x":              "_-x",
		".x":              "_.x",
		"a b":             "a_b",
		"x:y":             "x_y",
		"autn:x:y":        "autn:x_y",
		"AUTN:x":          "AUTN_x",
		"xmlns:autn":      "xmlns_autn",
		"ünï":             "_n_",
		"a\xffb":          "a_b",
		"<script>":        "_script_",
		"autn:1":          "autn:_1",
		"\x00":            "_",
		"dollar$@":        "dollar__",
		"_leading_under_": "_leading_under_",
	} {
		got := xmlName(in)
		require.Equal(t, want, got, "%q", in)
		require.True(t, validName(got), "%q", got)
	}
	require.Equal(t, "_xmlns", attrName("xmlns"))
	require.Equal(t, "xmlnsx", attrName("xmlnsx"))
}

func TestEncodeSimpleJSONRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		data []Node
		want string
	}{
		{"text element is a string", []Node{TextNode("a", "1")}, `{"a":"1"}`},
		{"empty text element is an empty string", []Node{TextNode("a", "")}, `{"a":""}`},
		{"empty container is an object", []Node{Container("actions")}, `{"actions":{}}`},
		{"attributes", []Node{{Name: "d", Attrs: []Attr{{"errors", "0"}, {"task", "T"}}}}, `{"d":{"@errors":"0","@task":"T"}}`},
		{"attributes and text", []Node{{Name: "f", Attrs: []Attr{{"message", "m"}}, Text: "id"}}, `{"f":{"@message":"m","$":"id"}}`},
		{"children and text", []Node{{Name: "p", Text: "t", Children: []Node{TextNode("c", "1")}}}, `{"p":{"$":"t","c":"1"}}`},
		{"single List element is an array", []Node{Container("actions", Node{Name: "action", List: true, Children: []Node{TextNode("status", "Finished")}})},
			`{"actions":{"action":[{"status":"Finished"}]}}`},
		{"single List text element is an array of strings", []Node{Container("tasks", Node{Name: "success", List: true, Text: "id1"})},
			`{"tasks":{"success":["id1"]}}`},
		{"repeated non-List element is an array", []Node{TextNode("a", "1"), TextNode("a", "2")}, `{"a":["1","2"]}`},
		{"siblings gathered at the first", []Node{TextNode("a", "1"), TextNode("b", "2"), TextNode("a", "3"), TextNode("c", "4"), TextNode("b", "5")},
			`{"a":["1","3"],"b":["2","5"],"c":"4"}`},
		{"List on a later sibling makes the group an array", []Node{TextNode("a", "1"), {Name: "a", Text: "2", List: true}}, `{"a":["1","2"]}`},
		{"autn prefix dropped", []Node{TextNode("autn:version", "1")}, `{"version":"1"}`},
		{"autn prefix dropped on attributes", []Node{{Name: "x", Attrs: []Attr{{"autn:a", "1"}}}}, `{"x":{"@a":"1"}}`},
		{"prefixed and plain names collide into an array", []Node{TextNode("autn:v", "1"), TextNode("v", "2")}, `{"v":["1","2"]}`},
		{"attributes colliding after prefix drop written once", []Node{{Name: "x", Attrs: []Attr{{"autn:a", "1"}, {"a", "2"}}}}, `{"x":{"@a":"1"}}`},
		{"numbers stay strings", []Node{TextNode("n", "42")}, `{"n":"42"}`},
		{"string escaping", []Node{TextNode("s", "q\"b\\n\nr\rt\tc\x01\x1f<&>/\u2028\u2029\xff")},
			`{"s":"q\"b\\n\nr\rt\tc\u0001\u001f<&>/\u2028\u2029\ufffd"}`},
		{"sanitised keys", []Node{TextNode("a b", "1"), {Name: "x", Attrs: []Attr{{"\"k\"", "v"}}}}, `{"a_b":"1","x":{"@_k_":"v"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, responsedata(t, FormatSimpleJSON, tc.data...))
		})
	}
}

func TestEncodeJSONRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		data []Node
		want string
	}{
		{"text is $", []Node{TokenNode("t")}, `{"token":{"$":"t"}}`},
		{"empty element is an empty object", []Node{TextNode("a", "")}, `{"a":{}}`},
		{"empty container is an empty object", []Node{Container("a")}, `{"a":{}}`},
		{"single List element is an object", []Node{Container("actions", Node{Name: "action", List: true, Children: []Node{TextNode("status", "Finished")}})},
			`{"actions":{"action":{"status":{"$":"Finished"}}}}`},
		{"repeated element is an array", []Node{TextNode("a", "1"), TextNode("a", "2")}, `{"a":[{"$":"1"},{"$":"2"}]}`},
		{"siblings gathered at the first", []Node{TextNode("a", "1"), TextNode("b", "2"), TextNode("a", "3")},
			`{"a":[{"$":"1"},{"$":"3"}],"b":{"$":"2"}}`},
		{"attributes and text", []Node{{Name: "f", Attrs: []Attr{{"message", "m"}}, Text: "id"}}, `{"f":{"@message":"m","$":"id"}}`},
		{"autn prefix kept", []Node{TextNode("autn:version", "1"), {Name: "x", Attrs: []Attr{{"autn:a", "1"}, {"a", "2"}}}},
			`{"autn:version":{"$":"1"},"x":{"@autn:a":"1","@a":"2"}}`},
		{"prefixed and plain names are different keys", []Node{TextNode("autn:v", "1"), TextNode("v", "2")}, `{"autn:v":{"$":"1"},"v":{"$":"2"}}`},
		{"string escaping", []Node{TextNode("s", "\"\\\x00\xc3")}, `{"s":{"$":"\"\\\u0000\ufffd"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, responsedata(t, FormatJSON, tc.data...))
		})
	}
}

// TestEncodeDeepAndWide checks big trees: many siblings of one name and
// deep nesting stay valid and complete.
func TestEncodeDeepAndWide(t *testing.T) {
	t.Parallel()
	wide := Container("actions")
	for range 2000 {
		wide.Children = append(wide.Children, Node{Name: "action", List: true, Children: []Node{TextNode("status", "Queued")}})
	}
	deep := TextNode("leaf", "x")
	for range 200 {
		deep = Node{Name: "n", Children: []Node{deep}}
	}
	for _, f := range []Format{FormatXML, FormatSimpleJSON, FormatJSON} {
		out, _ := Encode(nil, f, &Reply{Action: "A", Data: []Node{wide, deep}})
		if f == FormatXML {
			_, err := decodeXML(out, false)
			require.NoError(t, err)
		} else {
			require.True(t, json.Valid(out))
		}
		require.Equal(t, 2000, strings.Count(string(out), "Queued"))
	}
}
