package store

import "bytes"

// PrefixLister is implemented by datastores that list the keys under a
// prefix for an action more cheaply than ForEach: the shared store of a
// cluster (store/pgstore), which serves it from the node's cache of the
// listing, validated without a round trip of its own (see ForEachPrefix);
// the embedded bbolt store, which reads from the prefix's first key on
// (with the deferred writes under it) instead of every key.
type PrefixLister interface {
	ForEachPrefix(prefix []byte, fn func(key, value []byte) error) error
}

// ForEachPrefix calls fn for every key of ds that starts with prefix, in
// ascending byte order, with its value (both valid only until fn
// returns); an error from fn stops the walk and is returned as is. It is
// ds.ForEachPrefix when ds is a PrefixLister, else ds.ForEach with the
// other keys skipped.
//
// It is meant for the listing an action makes while a queue runs it
// (fetch.Repository.Run). What it shows may be older than what ForEach
// would: in a cluster's shared store, the listing is as the datastore was
// at some moment between the claim that gave this node the action and
// the call (with every write this process made before the call), where
// ForEach reads the datastore as it is at the call. Either is a state the
// action may see: a write acknowledged before the action was submitted is
// always in it.
//
// Keys under a prefix that is listed this way must never be written by
// MergeBookkeeping: the shared store does not count such merges as
// changes of the listing (they are what every action's end writes), so
// another node's merge there would not be seen. pgstore refuses such a
// merge (ErrInvalid) once the prefix was listed, and such a listing while
// one waits.
func ForEachPrefix(ds Datastore, prefix []byte, fn func(key, value []byte) error) error {
	if l, ok := ds.(PrefixLister); ok {
		return l.ForEachPrefix(prefix, fn)
	}
	return ds.ForEach(func(k, v []byte) error {
		if !bytes.HasPrefix(k, prefix) {
			return nil
		}
		return fn(k, v)
	})
}
