//go:build race

package httpfetch

// raceEnabled: the tests are built with -race, under which sync.Pool drops
// some of what it is given (allocation counts vary).
const raceEnabled = true
