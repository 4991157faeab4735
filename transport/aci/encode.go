package aci

// Content types of the encoded replies.
const (
	// ContentTypeXML is the Content-Type of XML replies. The official
	// Java client parses only responses whose type starts with text/xml.
	ContentTypeXML = "text/xml; charset=UTF-8"
	// ContentTypeJSON is the Content-Type of simplejson and json replies.
	ContentTypeJSON = "application/json; charset=UTF-8"
)

// Namespace is the URI bound to the autn prefix in every reply.
const Namespace = "http://schemas.autonomy.com/aci/"

const xmlHeader = `<?xml version='1.0' encoding='UTF-8' ?>` +
	`<autnresponse xmlns:autn="` + Namespace + `"><action>`

// Encode appends r, rendered in format f, to dst and returns the extended
// buffer and the reply's Content-Type. It does not allocate when dst has
// room, the names in r are valid XML names and r is not an error reply.
// The output is always well-formed (XML) or valid (JSON) whatever the
// strings in r hold. An unknown f encodes XML; a nil r encodes an empty
// SUCCESS reply.
func Encode(dst []byte, f Format, r *Reply) ([]byte, string) {
	if r == nil {
		r = &Reply{}
	}
	data := r.Data
	status := "SUCCESS"
	if r.Err != nil {
		status = "ERROR"
		data = []Node{r.Err.Node()}
	}
	switch f {
	case FormatSimpleJSON:
		return appendSimpleJSON(dst, r.Action, status, data), ContentTypeJSON
	case FormatJSON:
		return appendBadgerFish(dst, r.Action, status, data), ContentTypeJSON
	default:
		return appendXMLReply(dst, r.Action, status, data), ContentTypeXML
	}
}

func appendXMLReply(dst []byte, action, status string, data []Node) []byte {
	dst = append(dst, xmlHeader...)
	dst = appendXMLText(dst, action, false)
	dst = append(dst, "</action><response>"...)
	dst = append(dst, status...)
	dst = append(dst, "</response>"...)
	if len(data) == 0 {
		dst = append(dst, "<responsedata/>"...)
	} else {
		dst = append(dst, "<responsedata>"...)
		for i := range data {
			dst = appendXMLNode(dst, &data[i])
		}
		dst = append(dst, "</responsedata>"...)
	}
	return append(dst, "</autnresponse>"...)
}

func appendXMLNode(dst []byte, n *Node) []byte {
	name := xmlName(n.Name)
	dst = append(dst, '<')
	dst = append(dst, name...)
	plain := plainAttrs(n.Attrs, false)
	for i := range n.Attrs {
		a := n.Attrs[i].Name
		if !plain {
			a = attrName(a)
		}
		if i > 0 && attrSeen(n.Attrs[:i], a, plain, false) {
			continue // a repeated attribute would not be well-formed
		}
		dst = append(dst, ' ')
		dst = append(dst, a...)
		dst = append(dst, '=', '"')
		dst = appendXMLText(dst, n.Attrs[i].Value, true)
		dst = append(dst, '"')
	}
	if n.Text == "" && len(n.Children) == 0 {
		return append(dst, '/', '>')
	}
	dst = append(dst, '>')
	dst = appendXMLText(dst, n.Text, false)
	for i := range n.Children {
		dst = appendXMLNode(dst, &n.Children[i])
	}
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

// attrSeen reports whether an attribute among prev has the output name
// key: the attrName in XML, its jsonKey in JSON (strip for simplejson).
// plain says every name is plainName, so raw names can be compared.
func attrSeen(prev []Attr, key string, plain, strip bool) bool {
	for j := range prev {
		if plain {
			if prev[j].Name == key {
				return true
			}
		} else if jsonKey(attrName(prev[j].Name), strip) == key {
			return true
		}
	}
	return false
}
