package aci

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// fuzzReply builds a reply from fuzzer strings: element name1 with text1,
// attributes aname=aval and name2=text2 (when the names are not empty), a
// child element name2 with text2, and a sibling element name2 with text2
// after it. Names may collide once sanitised, which must never make the
// output invalid or lose a sibling.
func fuzzReply(action, name1, text1, aname, aval, name2, text2 string, list bool) *Reply {
	n := Node{Name: name1, Text: text1, List: list}
	if aname != "" {
		n.Attrs = append(n.Attrs, Attr{Name: aname, Value: aval})
	}
	data := []Node{n}
	if name2 != "" {
		data[0].Attrs = append(data[0].Attrs, Attr{Name: name2, Value: text2})
		data[0].Children = []Node{{Name: name2, Text: text2, List: list}}
		data = append(data, Node{Name: name2, Text: text2})
	}
	return &Reply{Action: action, Data: data}
}

func addEncodeSeeds(f *testing.F) {
	f.Add("QUEUEINFO", "action", "Finished", "task", "MYTASK", "token", "MTAu+/=", true)
	f.Add("A<&>", "autn:version", "a\x00b\xffc\r\n\t]]>", "autn:x", "\"q\"\t\r\n", "autn:", "\uFFFE\uFFFF\u2028", false)
	f.Add("", "", "", "xmlns", "http://x/", "1x", "", true)
	f.Add("x", "a b:c", "é€😀", "a:b:c", "<>", "-", "\\u0000", false)
	f.Add("x", "autn:v", "1", "autn:a", "2", "v", "3", false)
	f.Add("x", "a b", "1", "a_b", "2", "a:b", "3", true)
}

// xmlSafe is what XML text must read as after encoding: every character
// XML 1.0 cannot carry, and every byte of invalid UTF-8, as U+FFFD.
func xmlSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

// jsonSafe is what a JSON string must read as: invalid UTF-8 bytes as
// U+FFFD, everything else unchanged.
func jsonSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// wantAttrs is the attribute list XML must carry: sanitised names, the
// first of any repeated name.
func wantAttrs(attrs []Attr) []Attr {
	var out []Attr
	for _, a := range attrs {
		name, dup := attrName(a.Name), false
		for _, o := range out {
			dup = dup || o.Name == name
		}
		if !dup {
			out = append(out, Attr{Name: name, Value: xmlSafe(a.Value)})
		}
	}
	return out
}

// FuzzEncodeXML checks that any names, text and attributes give XML that
// encoding/xml reads, with sanitised names and the text and attribute
// values intact apart from characters XML cannot carry.
func FuzzEncodeXML(f *testing.F) {
	addEncodeSeeds(f)
	f.Fuzz(func(t *testing.T, action, name1, text1, aname, aval, name2, text2 string, list bool) {
		r := fuzzReply(action, name1, text1, aname, aval, name2, text2, list)
		out, _ := Encode(nil, FormatXML, r)
		root, err := decodeXML(out, false)
		require.NoError(t, err, "%q", out)
		require.Equal(t, xmlSafe(action), root.Children[0].Text)
		data := root.Children[2].Children
		require.Len(t, data, len(r.Data))
		n := data[0]
		require.Equal(t, xmlName(name1), n.Name)
		require.Equal(t, xmlSafe(text1), n.Text)
		require.Equal(t, wantAttrs(r.Data[0].Attrs), n.Attrs)
		if name2 != "" {
			require.Len(t, n.Children, 1)
			require.Equal(t, xmlName(name2), n.Children[0].Name)
			require.Equal(t, xmlSafe(text2), n.Children[0].Text)
			require.Equal(t, Node{Name: xmlName(name2), Text: xmlSafe(text2)}, data[1])
		} else {
			require.Empty(t, n.Children)
		}
	})
}

// FuzzEncodeJSON checks that both JSON encoders always give valid JSON
// that reads back to the same text and attribute values, and that
// siblings whose keys collide are gathered into an array.
func FuzzEncodeJSON(f *testing.F) {
	addEncodeSeeds(f)
	f.Fuzz(func(t *testing.T, action, name1, text1, aname, aval, name2, text2 string, list bool) {
		r := fuzzReply(action, name1, text1, aname, aval, name2, text2, list)
		for _, format := range []Format{FormatSimpleJSON, FormatJSON} {
			out, _ := Encode(nil, format, r)
			require.True(t, json.Valid(out), "%s", out)
			var doc struct {
				Autnresponse struct {
					Action       json.RawMessage            `json:"action"`
					Responsedata map[string]json.RawMessage `json:"responsedata"`
				} `json:"autnresponse"`
			}
			require.NoError(t, json.Unmarshal(out, &doc), "%s", out)
			simple := format == FormatSimpleJSON

			var action2 string
			if simple {
				require.NoError(t, json.Unmarshal(doc.Autnresponse.Action, &action2))
			} else {
				var o map[string]string
				require.NoError(t, json.Unmarshal(doc.Autnresponse.Action, &o))
				action2 = o["$"]
			}
			require.Equal(t, jsonSafe(action), action2)

			rd := doc.Autnresponse.Responsedata
			key1 := jsonKey(xmlName(name1), simple)
			raw, ok := rd[key1]
			require.True(t, ok, "%s", out)
			// The first element, unwrapped from its array when it is one.
			collide := name2 != "" && jsonKey(xmlName(name2), simple) == key1
			switch {
			case collide:
				var arr []json.RawMessage
				require.NoError(t, json.Unmarshal(raw, &arr), "%s", out)
				require.Len(t, arr, 2)
				require.Len(t, rd, 1)
				raw = arr[0]
			case simple && list:
				var arr []json.RawMessage
				require.NoError(t, json.Unmarshal(raw, &arr), "%s", out)
				require.Len(t, arr, 1)
				raw = arr[0]
			}
			if !collide && name2 != "" {
				require.Len(t, rd, 2)
			}
			if simple && len(r.Data[0].Attrs) == 0 && name2 == "" {
				var s string
				require.NoError(t, json.Unmarshal(raw, &s))
				require.Equal(t, jsonSafe(text1), s)
				continue
			}
			var obj map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(raw, &obj))
			str := func(k string) string {
				var s string
				require.NoError(t, json.Unmarshal(obj[k], &s), "%s in %s", k, raw)
				return s
			}
			if text1 != "" {
				require.Equal(t, jsonSafe(text1), str("$"))
			} else {
				require.NotContains(t, obj, "$")
			}
			seen := map[string]bool{}
			for _, a := range r.Data[0].Attrs {
				k := "@" + jsonKey(attrName(a.Name), simple)
				if !seen[k] {
					require.Equal(t, jsonSafe(a.Value), str(k))
				}
				seen[k] = true
			}
			if name2 != "" {
				require.Contains(t, obj, jsonKey(xmlName(name2), simple))
			}
		}
	})
}
