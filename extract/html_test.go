package extract

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A no-break space (&nbsp;, what Outlook and many editors put between
// inline elements) or any other Unicode space at the edge of a text
// separates words like an ASCII space: only ASCII spaces did, so "Name"
// and "Smith" of <b>Name</b>&nbsp;Smith ran together into "NameSmith".
func TestHTMLUnicodeSpaceBetweenElements(t *testing.T) {
	x := newX(t, Limits{})
	for page, want := range map[string]string{
		`<p><b>Name</b>&nbsp;Smith</p>`:                                   "Name Smith",
		`<p>Hello&nbsp;<b>world</b></p>`:                                  "Hello world",
		`<p><span>Kind</span><span>&nbsp;</span><span>regards</span></p>`: "Kind regards",
		`<p>a<b>&#x2003;em</b>&#x3000;ideographic</p>`:                    "a em ideographic",
		`<p>in&nbsp;one&nbsp;text</p>`:                                    "in one text",
	} {
		d, err := x.Extract(context.Background(), Input{Data: []byte(page), ContentType: "text/html; charset=utf-8"})
		require.NoError(t, err)
		assert.Equal(t, want, d.Text, page)
	}
}
