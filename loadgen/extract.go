package loadgen

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
)

// extractPath returns the text of the first element at path under the
// reply's <autnresponse> (XML), or of the first value at that path of a
// simplejson or BadgerFish json reply: "responsedata/hit/reference".
// Names match case-insensitively and without namespace prefixes
// (autn:reference is reference); in json, arrays are walked through.
// It is the slow path of a workload's save: and pool: (anything but the
// token and the status, which the reply parser already holds).
func extractPath(body []byte, path []string) (string, bool) {
	b := bytes.TrimLeft(body, " \t\r\n\ufeff")
	if len(b) > 0 && b[0] == '{' {
		return extractJSON(b, path)
	}
	return extractXML(b, path)
}

func localPart(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func extractXML(b []byte, path []string) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	var stack []string
	depth := 0 // matched elements of path under autnresponse
	var text strings.Builder
	capturing := false
	for {
		tok, err := d.Token()
		if err != nil {
			return "", false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, strings.ToLower(t.Name.Local))
			if capturing {
				continue
			}
			// stack[0] is autnresponse; stack[1:] must follow path.
			level := len(stack) - 1
			if level >= 1 && level == depth+1 && level <= len(path) && strings.EqualFold(localPart(t.Name.Local), localPart(path[level-1])) {
				depth = level
				if depth == len(path) {
					capturing = true
					text.Reset()
				}
			}
		case xml.CharData:
			if capturing {
				text.Write(t)
			}
		case xml.EndElement:
			level := len(stack) - 1
			if capturing && level == len(path) {
				return strings.TrimSpace(text.String()), true
			}
			if level == depth && depth > 0 {
				depth--
			}
			stack = stack[:len(stack)-1]
		}
	}
}

func extractJSON(b []byte, path []string) (string, bool) {
	var root any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return "", false
	}
	m, ok := root.(map[string]any)
	if !ok {
		return "", false
	}
	cur, ok := lookup(m, "autnresponse")
	if !ok {
		return "", false
	}
	return walkJSON(cur, path)
}

func lookup(m map[string]any, name string) (any, bool) {
	for k, v := range m {
		if strings.EqualFold(localPart(k), localPart(name)) {
			return v, true
		}
	}
	return nil, false
}

func walkJSON(cur any, path []string) (string, bool) {
	if arr, ok := cur.([]any); ok {
		for _, e := range arr {
			if s, ok := walkJSON(e, path); ok {
				return s, true
			}
		}
		return "", false
	}
	if len(path) == 0 {
		switch v := cur.(type) {
		case string:
			return v, true
		case json.Number:
			return v.String(), true
		case bool:
			if v {
				return "true", true
			}
			return "false", true
		case map[string]any:
			if t, ok := v["$"]; ok { // BadgerFish text
				return walkJSON(t, nil)
			}
		}
		return "", false
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return "", false
	}
	next, ok := lookup(m, path[0])
	if !ok {
		return "", false
	}
	return walkJSON(next, path[1:])
}
