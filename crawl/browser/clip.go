package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	readability "codeberg.org/readeck/go-readability/v2"
)

// clip computes Page.Clipped.
func (t *tab) clip(ctx context.Context, st *renderState, pg *Page, opts RenderOptions) (*Clipped, error) {
	switch opts.Clip.Mode {
	case ClipCSS:
		return t.clipCSS(ctx, st, opts)
	case ClipReadability:
		return clipReadability(pg, opts)
	}
	return nil, nil
}

func (t *tab) clipCSS(ctx context.Context, st *renderState, opts RenderOptions) (*Clipped, error) {
	args, _ := json.Marshal(map[string]any{
		"select":   strings.Join(nonEmpty(opts.Clip.Select), ","),
		"unselect": strings.Join(nonEmpty(opts.Clip.Unselect), ","),
		"maxText":  opts.MaxTextBytes,
		"maxHTML":  opts.MaxHTMLBytes,
	})
	var r struct {
		Text          string `json:"text"`
		HTML          string `json:"html"`
		Matched       int    `json:"matched"`
		Removed       int    `json:"removed"`
		TextTruncated bool   `json:"textTruncated"`
		HTMLTruncated bool   `json:"htmlTruncated"`
		Error         string `json:"error"`
	}
	if err := t.evalRetry(ctx, st, "("+clipJS+")("+string(args)+")", &r, opts.ReadTimeout/2); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: clipping took longer than ReadTimeout (%s)", ErrUnresponsive, opts.ReadTimeout)
		}
		return nil, fmt.Errorf("browser: clipping the page: %w", err)
	}
	if r.Error != "" {
		return nil, &ClipError{Msg: r.Error}
	}
	c := &Clipped{Mode: ClipCSS, Matched: r.Matched, Removed: r.Removed}
	var cutT, cutH bool
	c.Text, cutT = clipBytes(r.Text, opts.MaxTextBytes)
	c.HTML, cutH = clipBytes(r.HTML, opts.MaxHTMLBytes)
	c.Truncated = r.TextTruncated || r.HTMLTruncated || cutT || cutH
	return c, nil
}

// ClipError: a clipping selector is not valid CSS. Msg names the setting
// (ClipPageUsingCssSelect or ClipPageUsingCssUnselect) and the selector.
// It is an ErrBadSelector.
type ClipError struct{ Msg string }

func (e *ClipError) Error() string { return "browser: " + e.Msg }

// Unwrap makes a ClipError an ErrBadSelector.
func (e *ClipError) Unwrap() error { return ErrBadSelector }

// ErrBadSelector is what the error of a render is (errors.Is) when a
// selector of its options (WaitSelector, a clipping selector) is not
// valid CSS: every render with those options fails alike.
var ErrBadSelector = errors.New("browser: a selector is not valid CSS")

// clipReadability runs Mozilla's Readability (the Go port) on the
// rendered HTML. When it finds no article, the whole page's text and HTML
// are the clipped content (Fallback).
func clipReadability(pg *Page, opts RenderOptions) (*Clipped, error) {
	base, err := url.Parse(pg.FinalURL)
	if err != nil || base.Host == "" {
		base, _ = url.Parse(pg.URL)
	}
	c := &Clipped{Mode: ClipReadability}
	art, err := readability.FromReader(strings.NewReader(pg.HTML), base)
	if err != nil || art.Node == nil {
		c.Fallback = true
		c.Text, c.HTML, c.Truncated = pg.Text, pg.HTML, pg.Truncated.Text || pg.Truncated.HTML
		return c, nil
	}
	var text, html strings.Builder
	if err := art.RenderText(&text); err != nil {
		return nil, fmt.Errorf("browser: readability text: %w", err)
	}
	if err := art.RenderHTML(&html); err != nil {
		return nil, fmt.Errorf("browser: readability HTML: %w", err)
	}
	c.Title = art.Title()
	var cutT, cutH bool
	c.Text, cutT = clipBytes(strings.TrimSpace(text.String()), opts.MaxTextBytes)
	c.HTML, cutH = clipBytes(html.String(), opts.MaxHTMLBytes)
	c.Truncated = cutT || cutH || pg.Truncated.HTML
	if c.Text == "" {
		c.Fallback = true
		c.Text, c.HTML = pg.Text, pg.HTML
	}
	return c, nil
}
