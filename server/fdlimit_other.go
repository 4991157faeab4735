//go:build !unix

package server

// raiseFDLimit: no descriptor limit to raise or read here.
func raiseFDLimit() (uint64, error) { return 0, nil }
