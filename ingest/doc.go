// Package ingest delivers the documents a Synchronize produces to an
// ingestion target, and reads and writes IDOL's IDX format.
//
// # Targets
//
// Open returns the Target that Options describe ([Ingestion] IngesterType):
//
//   - IDX (the default): a folder of IDX files, the embedded target.
//   - JSONL: a folder of JSON Lines files.
//   - CFS: a Connector Framework Server, through its Ingest action.
//   - NONE (EnableIngestion=false): Open returns ErrDisabled and no target,
//     so the caller cannot count documents as ingested by mistake.
//
// Every target validates each document first (Document.Validate) and
// reports success only when the whole call is durably handed over; any
// failure is an error wrapping ErrDelivery, after which the caller counts
// the batch as ingestfailed and sends it again on a later run; when only
// items refused on their own failed (CFS: a document too large for a
// request of its own), the error's cause is a *PartialError listing them,
// and the caller counts and sends again only those. A call may
// have been partly delivered when it fails; re-delivery is harmless because
// documents replace earlier ones by reference and removals are idempotent.
//
// # IDX folder
//
// Each Add call writes its documents, BatchSize per file, in IDX (see
// WriteIDX) to "<stamp>-<instance>.idx"; each Remove call writes its
// references, BatchSize per file, to "<stamp>-<instance>.del", one
// "#DREDELETEREF <reference>" line each (ReadDeleteRefs reads them): the
// tag name IDX readers know for a deletion by reference, mirroring IDOL's
// DREDELETEREF index action (Docs=<references>), which is how a consumer
// applies the file. <stamp> is 20 digits of nanoseconds since 1970,
// strictly increasing within a process, and above the stamp of every such
// file (.idx, .del, .jsonl) in the folder when a target opens there, so
// that a clock set back across a restart cannot sort new files before
// those a consumer has not applied yet; <instance> is 16 random hex digits
// chosen when the target opens. So names never collide between targets,
// processes or restarts, and sorting them by name gives the delivery order
// of one target (and the time order of several): a consumer must apply .idx
// and .del files in name order, together. A file is written under a
// temporary name starting with "." and ending in ".tmp", fsynced, renamed
// to its final name and the folder fsynced before Add returns, so a
// consumer that only picks up *.idx and *.del never sees a partial file.
// The files of one call are rendered and written a few at a time, each
// fsynced as soon as it is written while the next are rendered (the file
// system commits its journal once for the fsyncs that wait together), then
// renamed in order once all are, and the folder fsynced once.
// Temporary files left by a crash (".<instance>-<n>.tmp", and
// ".probe-<n>.tmp" of the folder's writability check) are removed when an
// IDX target next opens in the folder with no other open there; while
// another one is open (another server writing to the same folder), only
// those older than an hour are. Every open IDX target holds a shared lock
// (flock) on the folder, which is how a new one tells; a server of a
// version without it, writing to the same folder, is not seen. No other
// file is ever removed.
//
// # JSON Lines
//
// The JSONL target appends one JSON object per line (UTF-8, LF) to
// "<stamp>-<instance>.jsonl" in Directory:
//
//	{"op":"add","reference":"R","fields":[{"name":"N","value":"V"},...],"content":"C"}
//	{"op":"add",...,"source":"<base64>","sourcetype":"application/pdf"}   when the document has Source
//	{"op":"remove","reference":"R"}
//
// fields keeps Document.Fields in order (names may repeat); strings that
// are not valid UTF-8 are written with U+FFFD in their place. Each batch
// of at most BatchSize lines is written with one write, and the file is
// fsynced once for all the batches of a call before it returns (a full
// file before the next one is started). A new file is started when the next batch would take
// the current one past MaxFileBytes, when the target reopens (a restart
// never appends to an old file) and after a failed write or fsync, so
// files sort in delivery order like the IDX folder's. If the process dies
// during a write, the last line of a file may be incomplete: readers must
// ignore a final line that does not end in LF. Applying the lines in order
// (add replaces by reference) makes replayed batches harmless. The newest
// file of a running target is still appended to: a reader follows it
// (complete lines), and takes a file away (removes or moves it) only once
// a later file of the same <instance> exists or the server has stopped.
// A file taken earlier is noticed before the next batch, which starts a
// new file (the call under way, if it had written to the taken file,
// fails and is sent again), so later deliveries are never written where
// no reader looks; a batch written just as the reader took the file may
// still be lost with it.
//
// # CFS
//
// The CFS target POSTs to http(s)://Host:Port/ a form-encoded body
// "action=Ingest&adds=<XML>" or "action=Ingest&removes=<references
// separated by commas>", BatchSize documents or references per request,
// with Content-Type application/x-www-form-urlencoded. The adds XML
// follows the CFS documentation:
//
//	<adds><add><document><reference>R</reference>
//	  <metadata name="N" value="V"/>...
//	  <pages content="extracted text"/>             when there is Content and no Source
//	</document>
//	<source content="base64 of Source"/>           when there is Source
//	</add>...</adds>
//
// Source bytes travel base64-encoded inside adds, the form CFS documents,
// so no multipart body is needed. A reply <response>SUCCESS</response>
// with a <token> means CFS has queued the batch in its own durable queue:
// that is the hand-over, and Add returns nil. An ERROR reply becomes an
// *ACIError (error id, string, description and code, each on one line, at
// most 300 bytes, URL passwords redacted); a non-2xx status, a
// reply that is not an <autnresponse>, a SUCCESS without a token, a
// timeout (Options.Timeout) and a cancelled context are errors too. The
// error of a non-2xx status carries what the server said: its *ACIError
// when the body is an ACI ERROR reply, else the body's text (markup left
// out, on one line, at most 300 bytes, URL passwords redacted, also one the
// cut falls in), such as a
// gateway's "502 Bad Gateway ... upstream timed out". A request refused
// for its size (HTTP 413, from CFS or a gateway's body limit, or an ACI
// ERROR with code ERRORREQUESTTOOLARGE; or a connection that CFS or a
// gateway closed without a reply, as a server may refuse a large body, and
// as a client sees a 413 sent while it was still sending the body; on a
// kept-alive connection, which a load balancer may have dropped while it
// was idle, only once the request sent again on a new connection is closed
// too; a close after CFS was silent for 10 seconds since the whole request
// was sent is CFS not answering, below) is sent again in halves, a half
// refused again split again: only a document too large on its own fails
// (the call's error names it), the others are delivered, and the requests
// after it still go: the call's error is then a *PartialError that lists
// the items refused, so that the connectors count and send again only
// those, not the whole call. After any other failure nothing more of the
// call is sent. After a request CFS did not answer within Options.Timeout (no
// connection or no reply; not a reply, whatever it says, a refused or
// reset connection, which fail at once anyway, nor the caller's context
// ending), or one whose connection was closed without a reply after CFS
// was silent for 10 seconds (a gateway or load balancer giving up on it),
// calls fail at once without sending anything,
// with an error wrapping ErrUnavailable that says since when and until
// when, for 30 seconds; then one call goes through, and each time it
// fails too the pause doubles, up to 2 minutes. A reply ends it. Without
// this, a hanging CFS held every call for Options.Timeout, batch after
// batch: hours of a crawl delivering nothing. A
// reference containing a comma cannot be removed through CFS and is refused
// with ErrInvalidDocument (the whole call, before anything is sent: the
// connectors then send the references again in halves, so that only that
// one fails).
//
// # IDX
//
// WriteIDX writes IDX as IDOL reads it (#DREREFERENCE, #DREFIELD
// name="value", #DRETITLE, #DREDATE, #DREDBNAME, #DRECONTENT, #DREENDDOC),
// without escaping, as IDOL has none; ReadIDX parses it back. The Collect
// action's .idx sidecar is the same format.
package ingest
