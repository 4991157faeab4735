// Package webfetch is the Web connector ([Connector] Type=WEB, product
// type WEBCONNECTOR): the HTTP connector (package httpfetch) with every
// HTML page rendered in headless Chromium (package crawl/browser), so
// that the links and text scripts create are crawled and indexed.
//
// It holds only what is browser-specific. The tasks, settings,
// datastore, change classification, batching and delivery, deletion of
// unreached pages, progress and fetch actions are httpfetch's: webfetch
// gives httpfetch an Extension (its own task settings: rendering, waits,
// clipping, form login) and an Options.Begin that, for each task that
// fetches pages, logs in when the task says so and returns the task's
// renderer (a crawl.Renderer: the crawl fetches a page, the browser
// renders those bytes, and title, text after clipping, metadata and links
// come from the rendered DOM), its cookie jar, the document fields of a
// rendering and View's rendered HTML.
//
// One browser pool per repository, so per server: started on first use,
// closed when idle and by Close, which the server calls in its shutdown
// order (fetch.Closer). docs/connectors/web.md describes the settings,
// fields and behaviour.
package webfetch
