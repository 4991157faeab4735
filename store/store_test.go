package store_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/store"
	"github.com/connectorhq/connector/store/storetest"
)

func openDurable(t *testing.T, dir string, f store.FaultInjector) store.Store {
	t.Helper()
	s, err := store.Open(store.Config{Dir: dir, Faults: f})
	require.NoError(t, err)
	return s
}

// reopenDurable closes s and opens its file again, without faults.
func reopenDurable(t *testing.T, s store.Store) store.Store {
	t.Helper()
	path := s.Info().Path
	require.NoError(t, s.Close())
	return openDurable(t, filepath.Dir(path), nil)
}

func TestBoltConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openDurable(t, t.TempDir(), nil) }, reopenDurable)
}

func TestBoltFaults(t *testing.T) {
	t.Parallel()
	storetest.RunFaults(t, func(t *testing.T, f store.FaultInjector) store.Store {
		return openDurable(t, t.TempDir(), f)
	}, reopenDurable)
}

func openMemory(t *testing.T, f store.FaultInjector) store.Store {
	t.Helper()
	s, err := store.Open(store.Config{Driver: store.DriverMemory, Faults: f})
	require.NoError(t, err)
	return s
}

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openMemory(t, nil) }, nil)
}

func TestMemoryFaults(t *testing.T) {
	t.Parallel()
	storetest.RunFaults(t, openMemory, nil)
}

func TestInfo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openDurable(t, dir, nil)
	defer s.Close()
	info := s.Info()
	require.Equal(t, filepath.Join(dir, store.DefaultFile), info.Path)
	require.Equal(t, "bbolt", info.Engine)
	require.False(t, info.InMemory)
	require.Positive(t, info.SizeBytes)

	m := openMemory(t, nil)
	defer m.Close()
	info = m.Info()
	require.Equal(t, store.Info{Engine: "memory", InMemory: true}, info)
	require.NoError(t, m.ApplyActions("fetch", []store.ActionMutation{storetest.Put(storetest.Record("a", 1, 1))}))
	require.Positive(t, m.Info().SizeBytes)
}
