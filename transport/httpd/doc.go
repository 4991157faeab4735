// Package httpd is the connector's ACI front end: a fasthttp server that
// parses each request with the ACI codec (transport/aci), routes it by
// action, and talks to the actors. It holds no shared mutable state of its
// own: queue state lives in the queue's actors, the request log in a
// request-log actor, and the few server-wide counters are atomics.
//
// Every request gets an ACI reply (HTTP 200, the autnresponse envelope),
// including malformed requests and handler panics, which become ACI errors
// and never take the server down. Replies are gzip (or brotli) compressed
// when the client accepts it and the reply is at least 1400 bytes.
//
// Actions served: Fetch (asynchronous: queues an action and answers with
// its token), QueueInfo (every QueueAction), GetVersion, GetStatus,
// GetRequestLog, GetPid, GetLicenseInfo, ThreadStatus, and the
// repository's synchronous actions when it has them (View, TaskList).
// GetChildren and Encrypted get an ERRORNOTIMPLEMENTED that says why.
// docs/protocol.md describes each with examples.
package httpd
