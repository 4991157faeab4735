package aci

import (
	"encoding/json"
	"os"
	"path/filepath"
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
