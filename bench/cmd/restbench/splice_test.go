package main

import (
	"testing"

	"github.com/connectorhq/connector/bench/internal/resulttest"
)

// make -C bench quick (QUICK=1) writes every step's section into
// out/RESULTS.quick.md; rest.sh used to write its own with '>', which
// emptied the file of the sections the steps before it had written.
func TestSpliceKeepsTheOtherSections(t *testing.T) {
	resulttest.SpliceKeepsOtherSections(t, "rest", splice)
}
