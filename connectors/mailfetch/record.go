package mailfetch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/connectorhq/connector/store"
)

// The datastore of a task (one store.Datastore, named after the task in
// upper case) holds:
//
//	m:task                    restsync.TaskMeta: the actions run on the task (TaskList)
//	c:<collection>            the transport's cursor of the collection, written
//	                          when a Synchronize has read the collection to the end
//	r:<collection>\x00<key>   record: one delivered message
//
// Nothing secret is stored: no password, no token, no message content.

const (
	cursorPrefix = "c:"
	recordPrefix = "r:"
)

// record is what the connector keeps about one delivered message.
type record struct {
	Version string   `json:"v"`           // mailbox.Meta.Version when delivered
	Ref     string   `json:"r"`           // the message document's reference
	Kids    []string `json:"k,omitempty"` // the sections of its attachment documents
	Title   string   `json:"t,omitempty"` // its subject (Identifiers)
	Size    int64    `json:"s,omitempty"`
}

func recordKey(collection, key string) []byte {
	return []byte(recordPrefix + collection + "\x00" + key)
}

func cursorKey(collection string) []byte { return []byte(cursorPrefix + collection) }

// state is the whole datastore of a task, read once per action: records by
// collection, and cursors.
type state struct {
	records map[string]map[string]*record
	cursors map[string][]byte
}

func loadState(ds store.Datastore) (*state, error) {
	st := &state{records: map[string]map[string]*record{}, cursors: map[string][]byte{}}
	err := ds.ForEach(func(k, v []byte) error {
		switch {
		case bytes.HasPrefix(k, []byte(recordPrefix)):
			coll, key, ok := strings.Cut(string(k[len(recordPrefix):]), "\x00")
			if !ok {
				return nil
			}
			r := &record{}
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
			m := st.records[coll]
			if m == nil {
				m = map[string]*record{}
				st.records[coll] = m
			}
			m[key] = r
		case bytes.HasPrefix(k, []byte(cursorPrefix)):
			st.cursors[string(k[len(cursorPrefix):])] = bytes.Clone(v)
		}
		return nil
	})
	return st, err
}

// known is a collection's records as a mailbox.Known.
type known struct {
	cursor  []byte
	records map[string]*record
}

func (k *known) Cursor() []byte { return k.cursor }
func (k *known) Version(key string) (string, bool) {
	r, ok := k.records[key]
	if !ok {
		return "", false
	}
	return r.Version, true
}
func (k *known) Keys(fn func(string)) {
	for key := range k.records {
		fn(key)
	}
}
func (k *known) Len() int { return len(k.records) }
