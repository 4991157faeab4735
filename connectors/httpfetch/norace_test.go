//go:build !race

package httpfetch

// raceEnabled: the tests are built with -race (see race_test.go).
const raceEnabled = false
