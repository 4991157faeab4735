package store

import (
	"encoding/json"
	"maps"
	"strconv"
)

// MergeBookkeeper is implemented by datastores that record a task's
// bookkeeping without reading it first: the shared store of a cluster
// (store/pgstore), where a read is a round trip to PostgreSQL that every
// action would otherwise pay as it ends. The merge is deferred as
// UpdateBookkeeping's writes are (same promise: a crash may lose it, the
// action's end is never committed without it) and applied by the store
// itself when it commits, to the record as it is then: counters it adds
// to are exact across the nodes of a cluster, fields it sets are last
// writer wins.
//
// MergeBookkeeping keeps m's maps as they are: the caller must not change
// them afterwards (each caller builds a new Merge per call).
type MergeBookkeeper interface {
	MergeBookkeeping(key []byte, m Merge) error
}

// Merge is a change of a record that holds a JSON object, made without
// reading it: each member of Add is added to the record's member of that
// name (an integer; a member that is absent or not an integer counts as
// 0), then each member of Set replaces the record's. A record that is
// absent or not a JSON object is taken as {}. Set's values must be valid
// JSON.
type Merge struct {
	Add map[string]int64
	Set map[string]json.RawMessage
}

// Clone returns a copy of m that shares nothing with it.
func (m Merge) Clone() Merge {
	return Merge{Add: maps.Clone(m.Add), Set: maps.Clone(m.Set)}
}

// Apply returns old changed by m (old nil: absent).
func (m Merge) Apply(old []byte) []byte {
	obj := map[string]json.RawMessage{}
	if old != nil {
		if err := json.Unmarshal(old, &obj); err != nil || obj == nil {
			obj = map[string]json.RawMessage{}
		}
	}
	for k, n := range m.Add {
		obj[k] = json.RawMessage(strconv.FormatInt(jsonInt(obj[k])+n, 10))
	}
	for k, v := range m.Set {
		obj[k] = v
	}
	b, err := json.Marshal(obj)
	if err != nil { // members were valid JSON (Set's are checked when merged)
		panic("store: merge: " + err.Error())
	}
	return b
}

// Then returns the merge that has the effect of m followed by next.
func (m Merge) Then(next Merge) Merge {
	out := m.Clone()
	for k, n := range next.Add {
		if v, ok := out.Set[k]; ok {
			out.Set[k] = json.RawMessage(strconv.FormatInt(jsonInt(v)+n, 10))
			continue
		}
		if out.Add == nil {
			out.Add = map[string]int64{}
		}
		out.Add[k] += n
	}
	for k, v := range next.Set {
		if out.Set == nil {
			out.Set = map[string]json.RawMessage{}
		}
		out.Set[k] = v
		delete(out.Add, k)
	}
	return out
}

// Valid reports whether every value of m.Set is valid JSON.
func (m Merge) Valid() bool {
	for _, v := range m.Set {
		if !json.Valid(v) {
			return false
		}
	}
	return true
}

// jsonInt is v as an integer, 0 when it is absent or not one.
func jsonInt(v json.RawMessage) int64 {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
