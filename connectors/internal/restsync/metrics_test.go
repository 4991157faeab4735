package restsync

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/metrics"
)

// A removal the target refuses whole for one reference it cannot take (CFS
// and a comma) is tried again reference by reference (RemoveRefs): the
// metrics count each reference once, by its outcome. The refused call
// counted all of them as failed too: for three references, one with a
// comma, connector_ingest_documents_total said 4 failed and 2 removed,
// where GetStatus's ingest_failed said 1.
func TestRemoveRefsCountedOnceInTheMetrics(t *testing.T) {
	m := metrics.New(metrics.Options{Queue: "fetch"})
	tgt := &recTarget{noCommas: true}
	errs := RemoveRefs(context.Background(), m.Target(tgt), []string{"a", "b,c", "d"})
	require.Len(t, errs, 3)
	require.NoError(t, errs[0])
	require.Error(t, errs[1])
	require.NoError(t, errs[2])
	require.Equal(t, []string{"a", "d"}, tgt.removed)

	got := map[string]float64{}
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "connector_ingest_documents_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			got[s.GetLabel()[0].GetValue()] = s.GetCounter().GetValue()
		}
	}
	require.Equal(t, map[string]float64{"added": 0, "removed": 2, "failed": 1}, got)
}
