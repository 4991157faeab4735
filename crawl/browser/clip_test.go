package browser

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clipPage builds its layout with a script: navigation, an article with an
// ad inside, a sidebar, a footer.
const clipPage = `<html><head><title>Clip test</title></head><body><div id="root"></div><script>
document.getElementById("root").innerHTML =
  '<nav class="menu"><a href="/a">Home</a> <a href="/b">Products</a> <a href="/c">Contact</a></nav>' +
  '<main><article class="post"><h1>The main story</h1>' +
  '<p>Rendered pages are read from the DOM once the scripts have run, so that text built by JavaScript is indexed like any other text. This paragraph is long enough to be the content a reader wants.</p>' +
  '<div class="ad">BUY NOW advertisement</div>' +
  '<p>A second paragraph of the article, also written by the script, with more words in it so that the readability algorithm scores it as content and keeps it in the article.</p>' +
  '</article><aside class="post">Sidebar post</aside></main>' +
  '<footer>Copyright footer text</footer>';
</script></body></html>`

func TestClipCSS(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	url := "http://127.0.0.1:9/clip"

	pg := render(t, p, url, clipPage, RenderOptions{Clip: Clipping{
		Mode: ClipCSS, Select: []string{"article", "footer"}, Unselect: []string{".ad"},
	}})
	require.NotNil(t, pg.Clipped)
	c := pg.Clipped
	assert.Equal(t, ClipCSS, c.Mode)
	assert.Equal(t, 2, c.Matched)
	assert.Equal(t, 1, c.Removed)
	assert.Contains(t, c.Text, "The main story")
	assert.Contains(t, c.Text, "Copyright footer text")
	assert.NotContains(t, c.Text, "BUY NOW", "unselected inside a selected element")
	assert.NotContains(t, c.Text, "Products", "navigation not selected")
	assert.NotContains(t, c.Text, "Sidebar")
	assert.True(t, strings.HasPrefix(c.HTML, "<article"), "%.30q", c.HTML)
	assert.NotContains(t, c.HTML, "BUY NOW")
	// The page itself is read before clipping: whole text, every link.
	assert.Contains(t, pg.Text, "BUY NOW")
	assert.Contains(t, pg.Text, "Products")
	assert.Len(t, pg.Links, 3)

	// Nested matches keep the outermost element once.
	pg = render(t, p, url, clipPage, RenderOptions{Clip: Clipping{Mode: ClipCSS, Select: []string{"main", ".post"}}})
	assert.Equal(t, 1, pg.Clipped.Matched)
	assert.Equal(t, 1, strings.Count(pg.Clipped.Text, "The main story"))
	assert.Contains(t, pg.Clipped.Text, "Sidebar post")

	// Unselect alone: the body minus what it matches.
	pg = render(t, p, url, clipPage, RenderOptions{Clip: Clipping{Mode: ClipCSS, Unselect: []string{"nav", "footer", ".ad", "aside"}}})
	assert.Contains(t, pg.Clipped.Text, "The main story")
	for _, gone := range []string{"Products", "Copyright", "BUY NOW", "Sidebar"} {
		assert.NotContains(t, pg.Clipped.Text, gone)
	}

	// A selector that matches nothing keeps nothing.
	pg = render(t, p, url, clipPage, RenderOptions{Clip: Clipping{Mode: ClipCSS, Select: []string{"#absent"}}})
	assert.Equal(t, 0, pg.Clipped.Matched)
	assert.Empty(t, pg.Clipped.Text)

	// A selector that is not CSS is an error naming the setting.
	for _, clip := range []Clipping{
		{Mode: ClipCSS, Select: []string{"article["}},
		{Mode: ClipCSS, Unselect: []string{"::nope("}},
	} {
		_, err := p.Render(context.Background(), url, []byte(clipPage), "text/html", RenderOptions{Clip: clip})
		var ce *ClipError
		require.ErrorAs(t, err, &ce)
		if len(clip.Select) > 0 {
			assert.Contains(t, err.Error(), `ClipPageUsingCssSelect: invalid CSS selector "article["`)
		} else {
			assert.Contains(t, err.Error(), "ClipPageUsingCssUnselect")
		}
	}
}

// articlePage is a news-like page built by a script: a long article
// between a menu, a link list and a footer.
const articlePage = `<html><head><title>Story</title></head><body><div id="root"></div><script>
var menu = '<nav><ul>' + ["Home","World","Business","Sport","Contact"].map(function(s){return '<li><a href="/' + s + '">' + s + '</a></li>'}).join("") + '</ul></nav>';
var paras = [];
for (var i = 1; i <= 6; i++) paras.push('<p>Paragraph ' + i + ' of the story: rendered pages are read from the DOM once the scripts have run, so that text built by JavaScript, which a plain HTTP fetch never sees, is indexed like any other text, with its commas, its clauses, and its details.</p>');
var links = '<div class="related">' + [1,2,3,4,5,6].map(function(i){return '<a href="/r' + i + '">Related ' + i + '</a>'}).join(" ") + '</div>';
document.getElementById("root").innerHTML = menu + '<div class="content"><article><h1>The main story</h1>' + paras.join("") + '</article></div>' + links + '<footer>Copyright footer text</footer>';
</script></body></html>`

func TestClipReadability(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	pg := render(t, p, "http://127.0.0.1:9/story", articlePage, RenderOptions{Clip: Clipping{Mode: ClipReadability}})
	c := pg.Clipped
	require.NotNil(t, c)
	assert.Equal(t, ClipReadability, c.Mode)
	assert.False(t, c.Fallback)
	assert.Contains(t, c.Text, "Paragraph 1 of the story")
	assert.Contains(t, c.Text, "Paragraph 6 of the story")
	assert.NotContains(t, c.Text, "Copyright footer text")
	assert.NotContains(t, c.Text, "Business")
	assert.NotContains(t, c.Text, "Related 3")
	assert.Contains(t, pg.Text, "Business", "the page's own text is whole")
	assert.Contains(t, c.HTML, "<p>")

	// No article at all: the whole page is the content.
	pg = render(t, p, "http://127.0.0.1:9/empty", `<html><body><script>document.body.textContent = ""</script></body></html>`,
		RenderOptions{Clip: Clipping{Mode: ClipReadability}})
	assert.True(t, pg.Clipped.Fallback)
	assert.Equal(t, pg.Text, pg.Clipped.Text)
}

// The clipped content is what incremental sync compares: a change outside
// the clipped part leaves it equal, a change inside does not.
func TestClippedContentIsStableOutsideTheClip(t *testing.T) {
	p := newPool(t, Config{Tabs: 1})
	opts := RenderOptions{Clip: Clipping{Mode: ClipCSS, Select: []string{"article"}}}
	a := render(t, p, "http://127.0.0.1:9/s", clipPage, opts)
	b := render(t, p, "http://127.0.0.1:9/s", strings.Replace(clipPage, "Copyright footer text", "Copyright 2027", 1), opts)
	c := render(t, p, "http://127.0.0.1:9/s", strings.Replace(clipPage, "The main story", "The updated story", 1), opts)
	assert.Equal(t, a.Clipped.Text, b.Clipped.Text)
	assert.Equal(t, a.Clipped.HTML, b.Clipped.HTML)
	assert.NotEqual(t, a.Text, b.Text)
	assert.NotEqual(t, a.Clipped.Text, c.Clipped.Text)
}
