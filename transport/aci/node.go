package aci

import (
	"time"

	"github.com/connectorhq/connector/messages"
)

// Attr is one XML attribute of a Node.
type Attr struct {
	Name, Value string
}

// Node is one element of a reply, rendered by Encode as XML or JSON.
//
// Name is an XML element name; an "autn:" prefix is kept in XML and in
// json, dropped in simplejson. Names that are not valid XML names are
// sanitised on output (see the package documentation). Text is the
// element's character data and may hold any bytes: what XML cannot carry
// is replaced by U+FFFD on output.
//
// Children == nil means a text element; a non-nil empty Children (see
// Container) marks an element that holds other elements but happens to
// be empty: both are <name/> in XML, but simplejson prints "" for the
// first and {} for the second.
//
// List marks an element that may repeat among its siblings: simplejson
// renders every element of that name as an array, even when there is one.
type Node struct {
	Name     string
	Attrs    []Attr
	Text     string
	Children []Node
	List     bool
}

// Container returns an element holding children. Children is never nil,
// so an empty container renders as {} in simplejson.
func Container(name string, children ...Node) Node {
	if children == nil {
		children = []Node{}
	}
	return Node{Name: name, Children: children}
}

// TextNode returns a text element.
func TextNode(name, text string) Node {
	return Node{Name: name, Text: text}
}

// Reply is one ACI response.
type Reply struct {
	// Action is printed in <action>; callers pass Request.Action, which is
	// upper case.
	Action string
	// Err, when set, makes this an error reply (<response>ERROR</response>)
	// whose responsedata is the error block; Data is then ignored. nil
	// means SUCCESS.
	Err *Error
	// Data are the children of <responsedata>.
	Data []Node
}

// Error is the ACI error block (autnResponse.xsd type error). ErrorFor
// builds one from a Go error.
type Error struct {
	ID          string    // errorid: "CON" + action + Raw, e.g. CONQUEUEINFO111
	Raw         int       // rawerrorid, printed in upper-case hex: 0x6F
	Code        string    // errorcode, e.g. ERRORPARAMINVALID
	String      string    // errorstring: short and fixed for a Code
	Description string    // errordescription: what exactly went wrong
	Time        time.Time // errortime, printed in Time's location as 02 Jan 06 15:04:05
}

// ErrorTimeLayout is the Go layout of errortime (autnSimpleTypes idolDate).
const ErrorTimeLayout = "02 Jan 06 15:04:05"

// Node returns the <error> element.
func (e *Error) Node() Node {
	return Node{Name: "error", Children: []Node{
		TextNode("errorid", e.ID),
		TextNode("rawerrorid", rawErrorID(e.Raw)),
		TextNode("errorstring", e.String),
		TextNode("errordescription", e.Description),
		TextNode("errorcode", e.Code),
		TextNode("errortime", e.Time.Format(ErrorTimeLayout)),
	}}
}

func rawErrorID(n int) string {
	const hex = "0123456789ABCDEF"
	u := uint64(n)
	if n < 0 {
		u = uint64(-int64(n))
	}
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = hex[u&0xF]
		u >>= 4
		if u == 0 {
			break
		}
	}
	i -= 2
	b[i], b[i+1] = '0', 'x'
	if n < 0 {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// ElementNode converts a result element produced by a repository. A nil
// element gives an empty Node.
func ElementNode(e *messages.Element) Node {
	if e == nil {
		return Node{}
	}
	n := Node{Name: e.GetName(), Text: e.GetText(), List: e.GetList()}
	if attrs := e.GetAttrs(); len(attrs) > 0 {
		n.Attrs = make([]Attr, 0, len(attrs))
		for _, a := range attrs {
			if a != nil {
				n.Attrs = append(n.Attrs, Attr{Name: a.GetName(), Value: a.GetValue()})
			}
		}
	}
	if ch := e.GetChildren(); len(ch) > 0 {
		n.Children = ElementNodes(ch)
	}
	return n
}

// ElementNodes converts result elements, skipping nil ones.
func ElementNodes(es []*messages.Element) []Node {
	out := make([]Node, 0, len(es))
	for _, e := range es {
		if e != nil {
			out = append(out, ElementNode(e))
		}
	}
	return out
}
