//go:build !race

package crawl

// raceEnabled: built with -race (see worker.recycleBody).
const raceEnabled = false
