package httpfetch

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
)

// FuzzParseInsertXML: never panics; what it accepts can be delivered.
func FuzzParseInsertXML(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		docs, err := parseInsertXML(s, 1<<20)
		if err != nil {
			var pe *messages.ParamError
			if !errors.As(err, &pe) || pe.Name != "InsertXML" {
				t.Fatalf("not a ParamError for InsertXML: %v", err)
			}
			return
		}
		for _, d := range docs {
			doc := ingest.Document{Reference: d.reference, Fields: d.metadata}
			if err := doc.Validate(); err != nil {
				t.Fatalf("accepted a document the targets refuse: %v", err)
			}
		}
	})
}

// FuzzParseIdentifiersXML: never panics; accepted identifiers decode.
func FuzzParseIdentifiersXML(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := parseIdentifiersXML(s, 1<<20)
		if err != nil {
			return
		}
		for _, e := range ids {
			if _, err := DecodeIdentifier(e.raw); err != nil {
				t.Fatalf("accepted %q: %v", e.raw, err)
			}
		}
	})
}

// FuzzConfigFragment: any Config parameter is accepted or refused with a
// ParamError; never a panic, never another kind of error.
func FuzzConfigFragment(f *testing.F) {
	b := setup(f, "[FetchTasks]\n0=MyTask\n[MyTask]\nUrl=http://127.0.0.1:1/\n")
	f.Fuzz(func(t *testing.T, text string) {
		_, err := b.repo.Validate(fetch.ActionSynchronize, params("Config", base64.StdEncoding.EncodeToString([]byte(text))))
		if err == nil {
			return
		}
		var pe *messages.ParamError
		if !errors.As(err, &pe) {
			t.Fatalf("not a ParamError: %v", err)
		}
	})
}
