package aci

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Real replies captured from OpenText servers (testdata/idol/responses,
// MIT, see testdata/idol/README.md).

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "idol", "responses", name))
	require.NoError(t, err)
	return b
}

// withoutPriority drops the priority element, which this server adds to
// every action and real servers do not print.
func withoutPriority(n Node) Node {
	out := n
	out.Children = nil
	for _, c := range n.Children {
		if c.Name != "priority" {
			out.Children = append(out.Children, c)
		}
	}
	return out
}

// TestFixtureGetStatusIdentifiers checks that ActionNode, given the status
// of the action in the real fixture, reproduces the fixture's action
// element: the same elements in the same order, the same attributes and
// text (apart from priority, which this server adds).
func TestFixtureGetStatusIdentifiers(t *testing.T) {
	t.Parallel()
	fixture := decodeReply(t, readFixture(t, "queueinfo-getstatus-identifiers.xml"), true)
	require.Equal(t, "QUEUEINFO", fixture.Action)
	require.Nil(t, fixture.Err)
	require.Len(t, fixture.Data, 1)
	require.Equal(t, "actions", fixture.Data[0].Name)
	require.Len(t, fixture.Data[0].Children, 1)
	want := fixture.Data[0].Children[0]

	node := ActionNode(fixtureAction(), testNow)
	got, _ := Encode(nil, FormatXML, &Reply{Action: "QUEUEINFO", Data: []Node{Container("actions", node)}})
	ours := decodeReply(t, got, false)
	require.Equal(t, normalize(want), withoutPriority(normalize(ours.Data[0].Children[0])))

	names := func(n Node) []string {
		var s []string
		for _, c := range n.Children {
			s = append(s, c.Name)
		}
		return s
	}
	require.Equal(t, []string{"status", "queued_time", "time_in_queue", "process_start_time", "time_processing",
		"process_end_time", "documentcounts", "fetchaction", "identifiers", "identifiers", "token"}, names(want))
	require.Equal(t, names(want), names(withoutPriority(node)))
}

// TestFixtureError re-encodes the real error reply and gets the same tree
// back, and checks ErrorFor fills the same fields in the same order.
func TestFixtureError(t *testing.T) {
	t.Parallel()
	fixture := decodeReply(t, readFixture(t, "error.xml"), true)
	require.Equal(t, "QUERY", fixture.Action)
	require.Equal(t, &Error{
		ID: "AXEQUERY502", Raw: 502, String: "No valid query text supplied",
		Description: "All terms were invalid, through being stopwords, too short, or incorrectly formatted",
		Code:        "ERRORPARAMINVALID", Time: at("2015-Nov-20 16:49:50"),
	}, fixture.Err)
	require.Equal(t, "0x1F6", rawErrorID(fixture.Err.Raw))

	got, _ := Encode(nil, FormatXML, fixture)
	again := decodeReply(t, got, false)
	require.Equal(t, fixture, again)
	xmllint(t, filepath.Join("testdata", "idol", "error-reply.xsd"),
		filepath.Join("testdata", "idol", "responses", "error.xml"))
}

// TestFixtureGetVersion re-encodes the real GetVersion reply (autn:
// names) in every format: XML gives the same tree back, simplejson drops
// the prefix, json keeps it.
func TestFixtureGetVersion(t *testing.T) {
	t.Parallel()
	fixture := decodeReply(t, readFixture(t, "getversion.xml"), true)
	require.Equal(t, "GETVERSION", fixture.Action)
	require.Equal(t, "autn:version", fixture.Data[0].Name)

	got, _ := Encode(nil, FormatXML, fixture)
	require.Equal(t, fixture, decodeReply(t, got, false))

	var simple struct {
		Autnresponse struct {
			Action       string
			Responsedata struct {
				Version    string `json:"version"`
				Servertime struct {
					Epoch string `json:"epoch"`
				} `json:"servertime"`
				Uptime struct {
					Seconds string `json:"seconds"`
				} `json:"uptime"`
			} `json:"responsedata"`
		} `json:"autnresponse"`
	}
	got, _ = Encode(nil, FormatSimpleJSON, fixture)
	require.NoError(t, json.Unmarshal(got, &simple))
	require.Equal(t, "GETVERSION", simple.Autnresponse.Action)
	require.Equal(t, "10.10.0", simple.Autnresponse.Responsedata.Version)
	require.Equal(t, "1448282817", simple.Autnresponse.Responsedata.Servertime.Epoch)
	require.Equal(t, "242727", simple.Autnresponse.Responsedata.Uptime.Seconds)

	var badger map[string]map[string]any
	got, _ = Encode(nil, FormatJSON, fixture)
	require.NoError(t, json.Unmarshal(got, &badger))
	rd := badger["autnresponse"]["responsedata"].(map[string]any)
	require.Equal(t, map[string]any{"$": "10.10.0"}, rd["autn:version"])
	require.Equal(t, map[string]any{"autn": Namespace}, badger["autnresponse"]["@xmlns"])
}

// TestFixturesValidate checks the copied schemas accept the real replies,
// so that a failure of our replies is ours.
func TestFixturesValidate(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "idol", "responses", "*.xml"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	xmllint(t, filepath.Join("testdata", "idol", "autnResponse.xsd"), files...)
}

// TestFixturesValidateTyped checks the real replies against the project's
// typed wrappers (testdata/idol/README.md): GetVersion against
// getVersionResponse.xsd, the QueueInfo reply against queueinfo-reply.xsd.
// It also records why queueinfo-reply.xsd exists: the real QueueInfo reply
// fails asynchronousTypes.xsd's own sequence, which puts process_end_time
// before process_start_time and the results after the token.
func TestFixturesValidateTyped(t *testing.T) {
	t.Parallel()
	idol := func(name string) string { return filepath.Join("testdata", "idol", name) }
	xmllint(t, idol("getversion-reply.xsd"), idol(filepath.Join("responses", "getversion.xml")))
	xmllint(t, idol("queueinfo-reply.xsd"), idol(filepath.Join("responses", "queueinfo-getstatus-identifiers.xml")))

	abs, err := filepath.Abs(idol("asynchronousTypes.xsd"))
	require.NoError(t, err)
	envelope, err := filepath.Abs(idol("autnResponse.xsd"))
	require.NoError(t, err)
	asWritten := filepath.Join(t.TempDir(), "as-written.xsd")
	require.NoError(t, os.WriteFile(asWritten, []byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:include schemaLocation="`+envelope+`"/>
  <xs:include schemaLocation="`+abs+`"/>
  <xs:element name="actions" type="actions"/>
</xs:schema>`), 0o600))
	path, _ := execLookXmllint(t)
	out, err := runXmllint(path, asWritten, idol(filepath.Join("responses", "queueinfo-getstatus-identifiers.xml")))
	require.Error(t, err, "%s", out)
	require.Contains(t, string(out), "Element 'process_start_time': This element is not expected. Expected is ( process_end_time )")
}

// xsdNode is an XML Schema element, read generically.
type xsdNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []xsdNode  `xml:",any"`
}

func (n xsdNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// complexType finds the named complex type of the schema in file.
func complexType(t *testing.T, file, name string) xsdNode {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var schema xsdNode
	require.NoError(t, xml.Unmarshal(b, &schema))
	for _, c := range schema.Children {
		if c.XMLName.Local == "complexType" && c.attr("name") == name {
			return c
		}
	}
	t.Fatalf("%s: no complexType %q", file, name)
	return xsdNode{}
}

// particles lists the elements and wildcards of a content model in
// document order, as "name type minOccurs maxOccurs" ("any" for a
// wildcard), descending into sequences and choices. An element of a group
// that may be absent (minOccurs="0") reads as minOccurs 0 itself.
func particles(n xsdNode) []string {
	var out []string
	for _, c := range n.Children {
		switch c.XMLName.Local {
		case "sequence", "choice":
			inner := particles(c)
			if c.attr("minOccurs") == "0" {
				for i, p := range inner {
					f := strings.Split(p, " ")
					if f[0] == "any" {
						f[3] = "0"
					} else {
						f[2] = "0"
					}
					inner[i] = strings.Join(f, " ")
				}
			}
			out = append(out, inner...)
		case "element":
			out = append(out, strings.Join([]string{c.attr("name"), c.attr("type"), c.attr("minOccurs"), c.attr("maxOccurs")}, " "))
		case "any":
			out = append(out, strings.Join([]string{"any", c.attr("namespace"), c.attr("processContents"), c.attr("minOccurs"), c.attr("maxOccurs")}, " "))
		}
	}
	return out
}

// TestQueueInfoSchemaMatchesOpenText holds queueinfo-reply.xsd's action
// type to asynchronousTypes.xsd's: every element and the wildcard of the
// original, with the same type and occurrence constraints, the original's
// required elements in the order real servers send them, and only optional
// connector results added between the times and the token.
func TestQueueInfoSchemaMatchesOpenText(t *testing.T) {
	t.Parallel()
	orig := particles(complexType(t, filepath.Join("testdata", "idol", "asynchronousTypes.xsd"), "action"))
	ours := particles(complexType(t, filepath.Join("testdata", "idol", "queueinfo-reply.xsd"), "action"))
	require.Equal(t, []string{
		"status xs:string  ", "queued_time s:queueInfoDate  ", "time_in_queue xs:long  ",
		"process_end_time s:queueInfoDate  ", "process_start_time s:queueInfoDate  ", "time_processing xs:long  ",
		"error xs:string 0 ", "token xs:string  ", "any ##any lax 0 unbounded",
	}, orig, "asynchronousTypes.xsd changed: review queueinfo-reply.xsd")
	for _, p := range orig {
		require.Contains(t, ours, p)
	}
	var kept, added []string
	for _, p := range ours {
		if slices.Contains(orig, p) {
			kept = append(kept, p)
		} else {
			added = append(added, p)
		}
	}
	require.Equal(t, []string{
		"status xs:string  ", "queued_time s:queueInfoDate  ", "time_in_queue xs:long  ",
		"process_start_time s:queueInfoDate  ", "time_processing xs:long  ", "process_end_time s:queueInfoDate  ",
		"error xs:string 0 ", "token xs:string  ", "any ##any lax 0 unbounded",
	}, kept, "the order real connectors send")
	for _, p := range added {
		require.Contains(t, p, " 0 ", "an added element must be optional: %s", p)
	}
}
