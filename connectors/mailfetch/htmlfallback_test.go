package mailfetch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
)

// An HTML body whose extraction fails (here its ExtractTimeout passes
// before it is read) was indexed as its raw bytes: the message's text was
// its markup, style sheet and all ("<html><head><style>p{...}"). It is the
// body with its tags removed, as a message read without the extractor
// gets it, and without the code of its style sheets and scripts (which
// the tag stripper kept: a newsletter's CSS was the start of its text).
func TestHTMLBodyExtractionFailureIsNotMarkup(t *testing.T) {
	g, api, _ := gmailRig(t, false, "ExtractTimeout=1ns\n")
	api.Deliver(mailtest.Message{From: "bob@example.com", To: user, Subject: "html only",
		HTML: `<html><head><title>News</title><STYLE type="text/css">p { color: red }</STYLE></head><body><h1>Big news</h1>` +
			`<script>var tracking = "<b>";</script><p>The zebra <b>crossed</b> at dawn.</p><script src="a.js"/></body></html>`}.Raw(), "INBOX")
	g.mustRun("Synchronize")
	d := g.target.Find("SUBJECT", "html only")
	require.Len(t, d, 1)
	require.NotContains(t, d[0].Content, "<")
	require.NotContains(t, d[0].Content, "color", "a style sheet is no text")
	require.NotContains(t, d[0].Content, "tracking", "nor a script")
	require.Contains(t, d[0].Content, "Big news")
	require.Contains(t, d[0].Content, "The zebra crossed at dawn.")
}
