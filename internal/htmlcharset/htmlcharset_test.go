package htmlcharset

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html/charset"
)

// A <meta> names the encoding Meta returns as it does for
// charset.DetermineEncoding in the first 1024 bytes, and the same past
// them, in the head.
func TestMetaReadsAsThePrescan(t *testing.T) {
	t.Parallel()
	pad := "<style>" + strings.Repeat("p{}\n", 300) + "</style>"
	for meta, want := range map[string]string{
		`<meta charset="windows-1251">`:            "windows-1251",
		`<META CHARSET=KOI8-R>`:                    "koi8-r",
		`<meta charset='latin1'/>`:                 "windows-1252",
		`<meta charset="utf-16le">`:                "utf-8",
		`<meta charset="shift_jis" charset="gbk">`: "shift_jis",
		`<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">`: "windows-1251",
		`<meta content='text/html;charset = "iso-8859-2"' http-equiv=content-type>`:  "iso-8859-2",
		`<meta content="text/html; charset=windows-1251">`:                           "",
		`<meta http-equiv="refresh" content="text/html; charset=windows-1251">`:      "",
		`<meta charset="no-such-charset">`:                                           "",
		`<meta charset="no-such-charset" content="text/html; charset=windows-1251">`: "",
		`<meta name="description" content="charset=windows-1251">`:                   "",
		`<meta charset>`: "",
	} {
		early := meta + pad
		_, name, certain := charset.DetermineEncoding([]byte(early), "text/html")
		require.False(t, certain, meta)
		if want == "" {
			require.Equal(t, "windows-1252", name, meta) // DetermineEncoding's default
		} else {
			require.Equal(t, want, name, meta)
		}
		for _, body := range []string{early, "<html><head><title>T</title>" + pad + "<!-- -->" + meta + "</head><p>x"} {
			e, name := Meta([]byte(body))
			require.Equal(t, want, name, meta)
			require.Equal(t, want == "", e == nil, meta)
		}
	}
}

// Past the first 1024 bytes, a <meta> counts while the head lasts, as in
// Chromium: until a start tag other than html, head and those a head
// holds, or an end tag other than theirs (</head> too).
func TestMetaInTheHeadOnly(t *testing.T) {
	t.Parallel()
	pad := "<script>" + strings.Repeat("var a = '<body>';\n", 70) + "</script>"
	meta := `<meta charset="windows-1251">`
	for body, found := range map[string]bool{
		"<html><head>" + pad + meta: true,
		pad + "<noscript></noscript><link rel=icon><base href=/><object></object>" + meta: true,
		"<!doctype html>" + pad + "<html><head><title>t</title>" + meta:                   true,
		pad + "</head>" + meta:                      false,
		pad + "<body>" + meta:                       false,
		pad + "<p>" + meta:                          false,
		pad + "<custom-tag>" + meta:                 false,
		pad + "</div>" + meta:                       false,
		"<p>" + meta + pad:                          true, // the first 1024 bytes: anywhere
		"<p>" + pad + meta:                          false,
		"<body>" + strings.Repeat("x", 1010) + meta: true,  // a tag that starts in them
		pad + meta[:len(meta)-1]:                    false, // cut
	} {
		e, _ := Meta([]byte(body))
		require.Equal(t, found, e != nil, "%.80q", body)
	}
	e, _ := Meta([]byte("<p>" + meta)) // short: the prescan's
	require.Nil(t, e)
}
