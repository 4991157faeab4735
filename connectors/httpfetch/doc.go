// Package httpfetch is the HTTP connector ([Connector] Type=HTTP, the
// default): the fetch.Repository behind the action queue. It crawls web sites (package crawl), delivers their pages
// to the ingestion target (package ingest) and keeps, per task, a durable
// datastore (package store) so that each Synchronize sends only what is
// new, changed or gone. It also serves Collect, Identifiers, Delete,
// Insert and Update, and the synchronous View and TaskList.
//
// # Usage
//
// The server finds it through its Descriptor (package connectors):
//
//	cfg, conn, err := connectors.Load(path) // checks the task keys (TaskKeys) and the tasks (Check)
//	repo, err := conn.New(fetch.Deps{Config: cfg, Store: st, Target: target, Logger: log})
//	q, err := queue.Start(sys, queue.Config{Name: "fetch", Repository: repo, ...})
//	// the server's scheduler submits a Synchronize per repo.Schedules() entry
//
// docs/connectors/http.md lists the task settings, their defaults and the
// request override rules. The crawl engine (package crawl) does the
// fetching; this package gives it its hooks: the job's Checkpoint as the
// pause gate, the datastore's validators as Prior, the pages it delivers,
// and the URLs it admits as the progress estimate.
//
// # Fetch actions and their parameters
//
// Every action also takes Config (a base64 configuration fragment) and
// setting overrides ([Task]Setting=Value or Setting=Value); any other
// parameter is accepted and ignored, as IDOL connectors do (its name goes
// to the action's debug log). Validate checks all of it when the action is
// submitted (a bad value for a setting is refused, naming the setting) and
// returns the tasks in upper case.
//
//   - SYNCHRONIZE: TaskSections (CSV; default every task of [FetchTasks];
//     ConfigSection=Task is accepted for one task, as clients send it),
//     Identifiers (CSV: re-fetch and re-deliver just those pages instead of
//     crawling). Tasks run one after the other. No result element, unless
//     Identifiers is given (then <tasks>).
//   - COLLECT: Identifiers (CSV) or IdentifiersXML (per item destination,
//     filename and metadata), Destination (folder, created if needed;
//     inside [Security] CollectFolders: a relative one in the first of
//     them, an absolute one must lie in one, written through os.Root so
//     that no link leads out), ConfigSection (optional: every identifier
//     must belong to it). Each
//     page is fetched now and written to the folder as
//     "<12 hex digits of the URL's SHA-256>_<last path segment>" (the
//     segment cut to 200 bytes, keeping its extension; or the XML's
//     filename) with an IDX sidecar "<name>.idx" holding
//     AUTN_IDENTIFIER, AUTN_COLLECTTIME (Unix seconds) and the XML's
//     metadata. Counts collected; result <tasks>.
//   - IDENTIFIERS: ConfigSection (required), ParentIdentifiers (CSV, ROOT
//     by default), ShowNames, ShowTypes, ShowAttributes (true by default),
//     ShowExcluded, ContainersOnly, FilterTypes, MaxDepth. A task's pages
//     are a flat list: every page the datastore knows is a document
//     directly under ROOT, with type "Web Page", attributes "document" and
//     its title as name, in URL order; pages excluded from ingestion by
//     UrlMustHaveRegex/UrlCantHaveRegex, or noindex, are listed only with
//     ShowExcluded (attributes "document,excluded"). A page has no
//     children, so a page identifier in ParentIdentifiers gives an empty
//     group, MaxDepth (validated) changes nothing, ContainersOnly and a
//     FilterTypes without "Web Page" list nothing. Counts seen; result one
//     <identifiers parent_identifier="..."> group per parent.
//   - DELETE: Identifiers (CSV), ConfigSection (optional). Removes the
//     documents from the target and forgets them in the datastore (a page
//     still on the site comes back with the next Synchronize). If the
//     target refuses, nothing is forgotten. Counts deleted, ingestdeleted;
//     result <tasks>.
//   - INSERT: ConfigSection, InsertXML (see parseInsertXML: reference,
//     metadata, file of type content, drecontent, file or tempfile,
//     displayname, insert_id). A file or tempfile path must be inside
//     [Security] InsertFolders (read through os.Root, regular files only,
//     at most the task's MaxPageBytes); any other path gets one error that
//     does not tell whether the file exists. tempfile (which deletes the
//     file once delivered) needs [Security] AllowTempFileDeletion. Needs a
//     target. Documents go straight to
//     the target with AUTN_IDENTIFIER and DREFILENAME (displayname); text
//     and HTML become DRECONTENT, other files Source bytes. They are not
//     recorded in the datastore, so no Synchronize lists or deletes them.
//     Counts inserted; result <tasks>, then, when the request gave any
//     insert_id, <identifiers> with one <identifier insert_id="...">ID
//     </identifier> per such document (delivered or failed), in request
//     order: connectors.xsd allows no attribute on <success>, and its
//     ResponseIdentifier carries insert_id.
//   - UPDATE: IdentifiersXML with <metadata name value/>, ConfigSection
//     (optional). Needs a target. Each page is fetched now and delivered
//     again with the metadata added; the metadata is kept in the page's
//     record and sent with every later version (a field of the same name
//     replaces the earlier one). Counts updated, ingestupdated; result
//     <tasks>.
//
// Request overrides are bounded (see checkRequestSettings): start URLs
// stay at the task's origins, StayOnSite stays on, and MaxPageBytes,
// Concurrency and RequestTimeout stay under the [Security] ceilings. The
// crawl refuses [Security] DeniedAddresses where it dials. Secret
// settings (BasicAuthPassword) may be given in IDOL's encrypted form; the
// Repository implements fetch.Secrets to seal and redact them.
//
// Results are <tasks><success>ID</success>...<failed message="why">ID
// </failed>...</tasks>, success entries first as connectors.xsd orders
// them, each ID as the request gave it. Collect, Update and Synchronize
// with Identifiers fetch only pages their task's datastore knows, so they
// (and View) never make the server fetch an arbitrary URL.
//
// # Identifiers
//
// AUTN_IDENTIFIER is base64 (standard, padded) of <id s="TASK" r="URL"/>,
// attribute values XML-escaped, TASK in upper case; r is the document's
// reference. DecodeIdentifier also accepts IDOL's <id t=... s=... r=.../>
// and tolerates a '+' that arrived as a space, lost padding and the
// URL-safe alphabet.
//
// # Documents
//
// DREREFERENCE is the page's URL after redirects (normalised by the
// crawl). Fields, in this order, each only when it has a value:
//
//	AUTN_IDENTIFIER  see above
//	DRETITLE         <title>, else the last path segment, else the host
//	DREDATE          Last-Modified, else the fetch time, in Unix seconds
//	URL              the reference again
//	REDIRECTED_FROM  the URL the crawl asked for, when it redirected
//	CONTENT_TYPE     the Content-Type header (else the sniffed type)
//	SIZE             body bytes
//	LAST_MODIFIED    the Last-Modified header as sent
//	ETAG             the ETag header as sent
//	DEPTH            link depth from a start URL
//	PARENT_URL       the page the link was first found on (not for start URLs)
//	FETCH_TIME       when the response arrived, Unix seconds
//	LANGUAGE         <html lang>, else content-language meta, else header
//	CANONICAL_URL    <link rel="canonical">
//	META_<NAME>      each <meta> (name, http-equiv or property), NAME upper-cased
//	                 with characters other than A-Z, 0-9, _ turned into _
//	                 (og:title gives META_OG_TITLE), in name order
//	...              metadata added by FetchAction=Update
//	AUTHOR, SUBJECT, KEYWORDS, DESCRIPTION
//	                 from an extracted document's metadata (below)
//	PAGE_COUNT       pages (PDF, docx/odt when their metadata says),
//	                 slides (pptx, odp) or sheets (xlsx, ods): the
//	                 document's, also when its text was cut
//	CREATED_DATE, MODIFIED_DATE
//	                 the document's own dates, Unix seconds
//	LANGUAGE         also from the document when the page has none
//	EXTRACT_FORMAT   pdf, docx, xlsx, pptx, odt, ods, odp or rtf
//	EXTRACT_TRUNCATED true when the text was cut (ExtractMaxTextBytes,
//	                 ExtractMaxPages)
//	EXTRACT_ERROR    why extraction failed (the document is delivered
//	                 without text)
//
// DRECONTENT is the page's visible text for HTML (text/html,
// application/xhtml+xml), the decoded text (charset from Content-Type,
// UTF-8 otherwise) for text/plain and the other types read as plain text
// (any text/* but HTML and RTF, such as text/csv, and JSON:
// extract.PlainText; delivered when AllowedContentTypes lets them), and
// the text package extract finds in
// a PDF, Office Open XML, OpenDocument or RTF document (ExtractText,
// ExtractFormats; DRETITLE then becomes the document's own title when it
// has one). Every type but HTML and text also carries the body as Source,
// with SourceType its media type. View returns the same fields as
// metadata.
//
// # Text extraction
//
// Extraction runs off the crawl's fetch workers (extract.go): a page that
// needs it waits in a queue of ExtractThreads slots and is extracted by one
// of ExtractThreads goroutines, then goes on to the batch like any other
// page. A fetch worker waits only for a free slot, which bounds the bodies
// held in memory. Each extraction is bounded by ExtractTimeout,
// ExtractMaxMemoryBytes, ExtractMaxTextBytes and ExtractMaxPages; a
// failure is logged (warn, with the URL and the reason), counted in
// errors, and the document is delivered without text with an
// EXTRACT_ERROR field, so the sync goes on. Stop drops the extractions
// under way with the other pages not yet in a batch. Update, Synchronize
// with Identifiers and Insert extract in line (they fetch a few pages on
// request). View returns metadata without extraction. A record keeps the
// extract.Version its document was built with: a file or plain-text page
// delivered by another one is fetched in full and delivered again, once
// (settings.extractStale), so that an upgrade's extraction fixes reach
// what is already indexed; HTML pages, whose text the crawl reads, are
// not.
//
// # Datastore
//
// One store.Datastore per task, named after the task in upper case (see
// record.go): "m:run" holds the run number (written only as a run starts,
// durably, so that a run number is never reused, in a cluster too);
// "m:task" holds the number of actions run on the task, the last action
// and its start and finish times (TaskList reads them, so they survive
// restarts; in a cluster they are last writer wins: statistics, not
// exact); "u:<URL>" holds, per page, the
// validators (ETag, Last-Modified), the SHA-256 of the last body, the
// links followed, the URL whose redirect led to it (if any), the hash of
// the content the target holds (Delivered;
// none when it holds nothing), the run in which the page was last seen,
// whether it is excluded from ingestion (and whether it was noindex:
// such a page is recorded for its links, not indexed), whether its rendering failed
// (an extension's renderer, crawl.Page.RenderErr), its title, type, size,
// depth, parent and fetch time, and Update's metadata.
//
// A later run asks for a page conditionally (If-None-Match,
// If-Modified-Since) only when a 304 needs no content: the target holds
// what was fetched last, the page is excluded from ingestion, or
// ingestion is disabled; and never for a page whose rendering failed at
// its last fetch (delivered as served, it is fetched and rendered again).
// A 304 lets the crawl continue through the page's recorded links.
//
// # Writes, delivery and Stop
//
// Pages are gathered in batches of [Ingestion] IngestBatchSize (or what
// has waited a second) and applied by a goroutine of their own, so the
// crawl goes on fetching while a batch is delivered (it waits only when
// [Server] MaxRequestBytes of documents are waiting). Batches that waited
// while the previous delivery ran are applied together: their new and
// changed documents are delivered in one Add (the IDX folder writes its
// files of IngestBatchSize documents and fsyncs them together, then its
// folder once) and their removals in one Remove, then every record is
// written in one deferred datastore write (store.UpdateDeferred), then
// they are counted. The slower the disk, the more pages each of its syncs
// carries. A failed delivery is counted as ingestfailed and leaves each
// record's Delivered as it was (so the next run sends the page again, and
// the datastore still says what the target holds); when the target took
// every document but some, each refused on its own (ingest.PartialError:
// CFS and a page too large for a request of its own), only those pages
// fail so. A failed removal keeps
// the record, so the next run removes it again. A removal the target
// refuses for one reference it cannot take (CFS cannot remove a URL with
// a comma) is sent again in halves (restsync.RemoveRefs), so that only
// that one fails, not every removal batched with it, and stops at the
// first request that fails for another reason (Delete does the same). Such a
// refusal is for good: a Synchronize reports it once (a failure naming
// the URL, ingestfailed, a warning) and forgets the page as if it was
// removed, rather than refusing it again in every run; its document stays
// in the index for an administrator to remove. (Delete, asked for it,
// fails it and keeps the record.)
//
// On the embedded store the records reach the disk with the store's next
// group commit (the queue's next write, at the latest within a second,
// and always before the action's end is on disk) rather than with a
// commit of their own. In a cluster the shared store commits them at once
// (it defers only bookkeeping: a node that takes the action over must
// find them; store.Deferrer).
// Since a record is written only after its delivery returned, a record is
// never on disk without the documents it stands for. A crash (kill -9,
// power loss) may lose the records of the last deliveries: the action,
// whose end was not on disk, runs again (ProcessingOnRestart) and delivers
// those pages again, which the targets accept (documents replace by
// reference). Before a removal is sent, its record is marked, durably,
// as one the target may no longer hold (Delivered none, "removing"): a
// crash that loses what was written after the removal leaves that mark,
// so a page back on the site by the re-run is delivered again (not
// answered 304 and left missing), and one still gone is removed again.
// (One case remains: a page updated just before a crash whose content
// goes back to its earlier version before the re-run is taken for
// unchanged, and the target keeps the newer version until the page
// changes again.)
//
// Pause: the crawl asks Job.Checkpoint before every page request, so no
// request starts while the action is paused. Stop cancels the crawl: no
// request starts after it, requests in flight are aborted, a batch being
// delivered is finished (bounded by two minutes) and recorded, and
// batches waiting for delivery and pages not yet in a batch are dropped:
// neither delivered, nor recorded, nor counted. So the counts of a stopped action match the datastore, and the
// next Synchronize, which crawls from the start URLs again, finds the
// delivered pages unchanged and adds the rest. An action re-run after a
// crash (Job.Restarts > 0) simply runs again from the datastore.
//
// Synchronize, Update and Delete of one task take the task's lock: a
// second one waits (in the Processing state) until the first ends.
//
// # Counts
//
// Per task, counted as each batch is applied (live while the action
// runs):
//
//   - seen: pages examined, answered 200 or 304 (excluded and noindex
//     pages included).
//   - added, updated, unchanged: pages to ingest, compared with what the
//     target holds: added when it holds nothing for the URL (new page, or
//     a page whose earlier delivery failed), updated when the content hash
//     differs, unchanged when it is the same (a 304, or a 200 with the same
//     hash). Without a target, compared with the last fetch instead.
//   - deleted: pages the datastore knew that are gone (see below), and
//     ingested pages that became excluded by UrlMustHaveRegex or
//     UrlCantHaveRegex, or noindex (removed from the target, still
//     crawled).
//   - ingestadded, ingestupdated, ingestdeleted: documents and removals the
//     target accepted. ingestfailed: documents and removals it refused.
//   - errors: fetch failures (network, timeout, HTTP errors other than a
//     404/410 of a known page, too large, bad redirects, a start URL
//     redirecting off the task's sites with StayOnSite, robots.txt
//     unavailable), text extraction failures (the document is still
//     delivered) and datastore read failures. Robots refusals and
//     media types not allowed are policy, not errors.
//
// # Deletion rules
//
// A known page is deleted (removed from the target if it holds it, and
// forgotten) when:
//
//   - the site answers 404 or 410 for it, in any run; or
//   - a crawl that completed did not reach it: not linked any more, beyond
//     Depth, refused by robots.txt or the spider regexes, off site, of a
//     media type no longer allowed, or behind a page that now
//     fails with a non-transient error (other 4xx, too large, redirect
//     errors).
//
// A crawl has completed when it ended by itself: not stopped, not cut
// short by MaxPages, not past the million distinct URLs a crawl records
// (crawl.DefaultMaxURLs: the URLs found after that are dropped, so it did
// not cover the site), with every sitemap read (one that failed
// transiently, or a robots.txt unavailable whose Sitemap: lines
// FollowSitemaps needed, leaves out the pages only it lists; a sitemap
// that is gone, 404, does not count), and it reached at least one page
// (a site whose start URLs all fail deletes nothing). Even then, a page that failed
// transiently (network error, timeout, 5xx, 408, 429, robots.txt
// unavailable), or whose record the datastore could not read when the
// crawl reached it, is kept, with every unreached page reachable from it
// through the links recorded by earlier runs, redirects included (a
// failed "/docs" that redirected to "/docs/" keeps "/docs/" and what it
// links to). (A page that moved behind a
// new page which failed transiently is deleted and comes back with the
// next run.)
//
// # Progress
//
// Synchronize publishes one stage per task with two sub-stages, "crawl"
// and "deletions". The crawl's percentage is pages done over URLs known
// (start URLs plus the links that pass Depth, StayOnSite and the spider
// regexes), an estimate kept below 100 until the crawl ends; the task's
// percentage weighs the crawl 90% and the deletions 10%, and the action's
// is the mean over its tasks.
package httpfetch
