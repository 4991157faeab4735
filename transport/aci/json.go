package aci

// appendSimpleJSON renders ResponseFormat=simplejson (aci-protocol.md §1.5):
// text-only elements are strings, attributes are "@name" keys, text next to
// attributes or children is "$", elements marked List (or repeated) are
// arrays, and autn: prefixes are dropped.
func appendSimpleJSON(dst []byte, action, status string, data []Node) []byte {
	dst = append(dst, `{"autnresponse":{"action":`...)
	dst = appendJSONString(dst, action)
	dst = append(dst, `,"response":"`...)
	dst = append(dst, status...)
	dst = append(dst, `","responsedata":`...)
	dst = appendJSONObject(dst, nil, "", data, true)
	return append(dst, '}', '}')
}

// appendBadgerFish renders ResponseFormat=json, a BadgerFish mapping: every
// element is an object, its text is "$", attributes are "@name", a child
// name that occurs once is an object and one that repeats is an array, the
// autn: prefix is kept and declared in "@xmlns" on autnresponse.
func appendBadgerFish(dst []byte, action, status string, data []Node) []byte {
	dst = append(dst, `{"autnresponse":{"@xmlns":{"autn":"`+Namespace+`"},"action":`...)
	dst = appendJSONObject(dst, nil, action, nil, false)
	dst = append(dst, `,"response":{"$":"`...)
	dst = append(dst, status...)
	dst = append(dst, `"},"responsedata":`...)
	dst = appendJSONObject(dst, nil, "", data, false)
	return append(dst, '}', '}')
}

func appendJSONValue(dst []byte, n *Node, simple bool) []byte {
	if simple && len(n.Attrs) == 0 && n.Children == nil {
		return appendJSONString(dst, n.Text)
	}
	return appendJSONObject(dst, n.Attrs, n.Text, n.Children, simple)
}

// appendJSONKey appends "prefix+key": where key is a sanitised XML name,
// which needs no escaping.
func appendJSONKey(dst []byte, comma bool, prefix byte, key string) []byte {
	if comma {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	if prefix != 0 {
		dst = append(dst, prefix)
	}
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendJSONObject(dst []byte, attrs []Attr, text string, children []Node, simple bool) []byte {
	dst = append(dst, '{')
	comma := false
	plain := plainAttrs(attrs, simple)
	for i := range attrs {
		key := attrs[i].Name
		if !plain {
			key = jsonKey(attrName(key), simple)
		}
		if i > 0 && attrSeen(attrs[:i], key, plain, simple) {
			continue
		}
		dst = appendJSONKey(dst, comma, '@', key)
		dst = appendJSONString(dst, attrs[i].Value)
		comma = true
	}
	if text != "" {
		dst = appendJSONKey(dst, comma, '$', "")
		dst = appendJSONString(dst, text)
		comma = true
	}
	// Siblings of one name are written together, at the first one. With
	// plain names, keys are equal exactly when names are.
	plain = plainNodes(children, simple)
	same := func(j int, key string) bool {
		if plain {
			return children[j].Name == key
		}
		return jsonKey(xmlName(children[j].Name), simple) == key
	}
	for i := range children {
		key := children[i].Name
		if !plain {
			key = jsonKey(xmlName(key), simple)
		}
		if i > 0 && (same(i-1, key) || keySeen(children[:i-1], key, plain, simple)) {
			continue
		}
		count, list := 0, false
		for j := i; j < len(children); j++ {
			if same(j, key) {
				count++
				list = list || children[j].List
			}
		}
		dst = appendJSONKey(dst, comma, 0, key)
		comma = true
		if count == 1 && !(simple && list) {
			dst = appendJSONValue(dst, &children[i], simple)
			continue
		}
		dst = append(dst, '[')
		for j, first := i, true; j < len(children); j++ {
			if same(j, key) {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = appendJSONValue(dst, &children[j], simple)
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// keySeen reports whether a node among prev has the JSON key key.
func keySeen(prev []Node, key string, plain, strip bool) bool {
	for j := range prev {
		if plain {
			if prev[j].Name == key {
				return true
			}
		} else if jsonKey(xmlName(prev[j].Name), strip) == key {
			return true
		}
	}
	return false
}
