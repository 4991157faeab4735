package aci

import (
	"testing"

	"github.com/connectorhq/connector/messages"
)

// Typical requests: a Fetch submit as the Java client posts it, and a
// QueueInfo GetStatus of one token in the path form.
var (
	benchFetchURI  = []byte("/")
	benchFetchCT   = []byte("text/plain; charset=ISO-8859-1")
	benchFetchBody = []byte("action=Fetch&FetchAction=Synchronize&TaskSections=MYTASK1%2CMYTASK2" +
		"&Config=W015VGFza10KVXJsPWh0dHBzOi8vZXhhbXBsZS5jb20vCkRlcHRoPTMKU3RheU9uU2l0ZT10cnVlCg%3D%3D" +
		"&ActionID=job-42&ResponseFormat=simplejson")
	benchStatusURI = []byte("/action=QueueInfo&QueueAction=GetStatus&QueueName=Fetch" +
		"&Token=MTYuMjguOTQuMTcyOjEyMzQ6RkVUQ0g6MTQzOTgyOTY0OTQ2NjAxMjY4ODQ1NTM2&ResponseFormat=xml")
)

func BenchmarkParse(b *testing.B) {
	b.Run("fetch-submit-post", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchFetchURI) + len(benchFetchBody)))
		for b.Loop() {
			if _, err := Parse([]byte("POST"), benchFetchURI, benchFetchCT, benchFetchBody); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("queueinfo-getstatus-get", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchStatusURI)))
		for b.Loop() {
			if _, err := Parse([]byte("GET"), benchStatusURI, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchReplies() []struct {
	name  string
	reply *Reply
} {
	running := getStatusActions()[0]
	return []struct {
		name  string
		reply *Reply
	}{
		{"token", &Reply{Action: "FETCH", Data: []Node{TokenNode("MTAuMi4xMDUuMzQ6MTIzNDpGRVRDSDoxNzUyNTc4MDc0")}}},
		{"getstatus-1-action", &Reply{Action: "QUEUEINFO", Data: []Node{Container("actions", ActionNode(running, testNow))}}},
		{"getstatus-identifiers", &Reply{Action: "QUEUEINFO", Data: []Node{Container("actions", ActionNode(fixtureAction(), testNow))}}},
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, r := range benchReplies() {
		for _, f := range []Format{FormatXML, FormatSimpleJSON, FormatJSON} {
			b.Run(r.name+"/"+f.String(), func(b *testing.B) {
				b.ReportAllocs()
				buf, _ := Encode(nil, f, r.reply)
				b.SetBytes(int64(len(buf)))
				for b.Loop() {
					buf, _ = Encode(buf[:0], f, r.reply)
				}
			})
		}
	}
}

// BenchmarkActionNode measures building one GetStatus action from its
// status, the other half of answering GetStatus.
func BenchmarkActionNode(b *testing.B) {
	s := getStatusActions()[0]
	b.ReportAllocs()
	for b.Loop() {
		_ = ActionNode(s, testNow)
	}
}

// BenchmarkErrorReply measures the error path: ErrorFor and encoding.
func BenchmarkErrorReply(b *testing.B) {
	err := messages.Invalid("Priority", "high", "must be an integer")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = Encode(buf[:0], FormatXML, &Reply{Action: "QUEUEINFO", Err: ErrorFor("QUEUEINFO", err, testNow)})
	}
}
