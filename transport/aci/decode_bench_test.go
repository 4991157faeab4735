package aci

import (
	"os"
	"path/filepath"
	"testing"
)

// Replies the harness reads on its hot path, as the connector writes
// them, and a real IDOL GetStatus reply.
var (
	benchTokenXML   = []byte(`<?xml version='1.0' encoding='UTF-8' ?><autnresponse xmlns:autn="http://schemas.autonomy.com/aci/"><action>FETCH</action><response>SUCCESS</response><responsedata><token>MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MTc2NDAwMDAwMDAwMDAxMjM0NTY3ODk=</token></responsedata></autnresponse>`)
	benchStatusXML  = []byte(`<?xml version='1.0' encoding='UTF-8' ?><autnresponse xmlns:autn="http://schemas.autonomy.com/aci/"><action>QUEUEINFO</action><response>SUCCESS</response><responsedata><actions><action><status>Processing</status><queued_time>2026-Jan-02 15:04:02</queued_time><time_in_queue>1</time_in_queue><process_start_time>2026-Jan-02 15:04:03</process_start_time><time_processing>2</time_processing><documentcounts><documentcount added="3" errors="0" seen="3" task="MYTASK"/></documentcounts><fetchaction>SYNCHRONIZE</fetchaction><priority>0</priority><token>MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MTc2NDAwMDAwMDAwMDAxMjM0NTY3ODk=</token></action></actions></responsedata></autnresponse>`)
	benchStatusJSON = []byte(`{"autnresponse":{"action":"QUEUEINFO","response":"SUCCESS","responsedata":{"actions":{"action":[{"status":"Processing","queued_time":"2026-Jan-02 15:04:02","time_in_queue":"1","process_start_time":"2026-Jan-02 15:04:03","time_processing":"2","documentcounts":{"documentcount":[{"@added":"3","@errors":"0","@seen":"3","@task":"MYTASK"}]},"fetchaction":"SYNCHRONIZE","priority":"0","token":"MTI3LjAuMC4xOjcwMDA6RkVUQ0g6MTc2NDAwMDAwMDAwMDAxMjM0NTY3ODk="}]}}}}`)
)

func BenchmarkDecodeReply(b *testing.B) {
	idol, err := os.ReadFile(filepath.Join("testdata", "idol", "responses", "queueinfo-getstatus-identifiers.xml"))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"token-xml", benchTokenXML},
		{"status-xml", benchStatusXML},
		{"status-simplejson", benchStatusJSON},
		{"idol-identifiers-xml", idol},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			var r Decoded
			for b.Loop() {
				if err := DecodeReply(bc.body, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
