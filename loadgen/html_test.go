package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// chromium is Debian's headless Chromium (chromium-headless-shell, which
// make test installs).
const chromium = "/usr/bin/chromium-headless-shell"

// probeScript reads the rendered charts back: their size in the layout,
// the size of what they plot, the hover texts of their points and the
// values of their lines and bars, the verdict, and every external
// reference the page makes.
const probeScript = `<script>
(function () {
  const out = {charts: []};
  for (const svg of document.querySelectorAll('svg.chart')) {
    const bb = svg.getBoundingClientRect();
    const series = svg.querySelector('g.series');
    const sb = series ? series.getBBox() : {width: 0, height: 0};
    out.charts.push({id: svg.id, kind: svg.dataset.kind, width: bb.width, height: bb.height,
      seriesWidth: sb.width, seriesHeight: sb.height,
      titles: [...svg.querySelectorAll('g.series title')].map(t => t.textContent),
      lines: [...svg.querySelectorAll('g.series path[data-points]')].map(p => ({series: p.parentNode.dataset.series, points: p.getAttribute('data-points')})),
      bars: [...svg.querySelectorAll('g.series rect[data-value]')].map(r => ({series: r.parentNode.dataset.series, value: +r.dataset.value, height: r.getBBox().height}))});
  }
  out.verdict = document.getElementById('verdict').textContent;
  out.external = [...document.querySelectorAll('[src],[href],link,iframe,img,object,embed')].map(e => e.outerHTML.slice(0, 80));
  out.scripts = document.scripts.length;
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`

type probedChart struct {
	ID           string  `json:"id"`
	Kind         string  `json:"kind"`
	Width        float64 `json:"width"`
	Height       float64 `json:"height"`
	SeriesWidth  float64 `json:"seriesWidth"`
	SeriesHeight float64 `json:"seriesHeight"`
	Titles       []string
	Lines        []struct{ Series, Points string }
	Bars         []struct {
		Series string
		Value  float64
		Height float64
	}
}

// renderInChromium loads page in headless Chromium with the probe and
// returns what the probe read.
func renderInChromium(t *testing.T, page []byte) (charts map[string]probedChart, verdict string, external []string, scripts int) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing: make test installs chromium-headless-shell (%v)", chromium, err)
	}
	dir := t.TempDir()
	probe := bytes.Replace(page, []byte("</body>"), []byte(probeScript+"</body>"), 1)
	path := filepath.Join(dir, "probe.html")
	require.NoError(t, os.WriteFile(path, probe, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--window-size=1000,2400", "--dump-dom", "file://"+path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	m := regexp.MustCompile(`(?s)<pre id="probe">(.*?)</pre>`).FindSubmatch(stdout.Bytes())
	require.NotNil(t, m, "no probe output in the rendered DOM: %s", stderr.String())
	var out struct {
		Charts   []probedChart
		Verdict  string
		External []string
		Scripts  int
	}
	require.NoError(t, json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &out))
	charts = map[string]probedChart{}
	for _, c := range out.Charts {
		charts[c.ID] = c
	}
	return charts, out.Verdict, out.External, out.Scripts
}

// The HTML report renders in a real browser: its five charts are laid
// out and plot something, they carry the run's own numbers (percentiles,
// per-interval throughput, errors), and the page references nothing
// outside itself.
func TestHTMLReportRendersInChromium(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.queuedFor, f.processFor = time.Millisecond, 2*time.Millisecond
	var fetches atomic.Int64
	f.fail = func(_ int, key string) (int, string) {
		if key == "FETCH" && fetches.Add(1)%7 == 0 {
			return 503, "busy"
		}
		return 0, ""
	}
	base := f.start(t)
	rep, err := Run(context.Background(), Config{Target: base, Scenario: ScenarioMixed, Rate: 150, Requests: 120, Duration: time.Minute,
		Poll: time.Millisecond, Interval: 200 * time.Millisecond, MaxErrorRate: 0.5})
	require.NoError(t, err)
	require.Positive(t, rep.Errors.Total)
	var page bytes.Buffer
	require.NoError(t, WriteHTML(&page, rep))
	require.NotContains(t, page.String(), "<script", "the report itself runs no script")

	charts, verdict, external, scripts := renderInChromium(t, page.Bytes())
	require.Equal(t, "PASS", verdict)
	require.Empty(t, external, "the page loads nothing from anywhere")
	require.Equal(t, 1, scripts, "only the test's probe")
	for _, id := range []string{"throughput", "percentiles", "latency", "errors", "cpu"} {
		c, ok := charts[id]
		require.True(t, ok, "chart %s is missing", id)
		require.Greater(t, c.Width, 300.0, id)
		require.Greater(t, c.Height, 100.0, id)
		require.Positive(t, c.SeriesWidth, "%s plots something", id)
		require.Positive(t, c.SeriesHeight, "%s plots something", id)
	}

	// The percentile plot carries the report's percentiles of every row.
	titles := strings.Join(charts["percentiles"].Titles, "\n")
	for _, l := range latencyOrder(rep) {
		require.Contains(t, titles, l.Name+" p50: "+fmtMs(float64(l.P50Us)/1000), l.Name)
		if l.Count >= 100 { // p99 is resolved (plotted) from 100 values on
			require.Contains(t, titles, l.Name+" p99: "+fmtMs(float64(l.P99Us)/1000), l.Name)
		}
		require.Contains(t, titles, l.Name+" p90: "+fmtMs(float64(l.P90Us)/1000), l.Name)
		require.Contains(t, titles, l.Name+" max: "+fmtMs(float64(l.MaxUs)/1000), l.Name)
	}

	// The throughput line is the timeline's operations per second.
	var opsLine string
	for _, l := range charts["throughput"].Lines {
		if l.Series == "operations/s" {
			opsLine = l.Points
		}
	}
	pts := strings.Fields(opsLine)
	require.Len(t, pts, len(rep.Timeline))
	for i, iv := range rep.Timeline {
		xy := strings.Split(pts[i], ",")
		y, err := strconv.ParseFloat(xy[1], 64)
		require.NoError(t, err)
		require.InEpsilon(t, float64(iv.OK+iv.Failed)/(float64(iv.LengthUs)/1e6)+1e-9, y+1e-9, 1e-6, "interval %d (8 significant digits)", i)
	}

	// The error bars add up to the failed operations, by class.
	var sum float64
	for _, b := range charts["errors"].Bars {
		require.Equal(t, "http", b.Series)
		require.Positive(t, b.Height)
		sum += b.Value
	}
	require.Equal(t, float64(rep.Errors.Total), sum)

	// The latency-over-time chart has the operation's p99 of each
	// interval that had operations.
	require.Contains(t, strings.Join(charts["latency"].Titles, "\n"), "operation p99")
}
