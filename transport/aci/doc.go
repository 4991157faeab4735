// Package aci is the ACI wire codec: it turns the bytes of an HTTP request
// into a Request (Parse) and a Reply into the bytes of an autnresponse
// (Encode), and it is the only package that knows ACI wire error codes
// (ErrorFor). It works on plain []byte and strings, never on an HTTP
// library's types, so that it can be fuzzed and reused by a client. The
// protocol it implements is described in aci-protocol.md (§ numbers below
// refer to it).
//
// # Requests
//
// Parse accepts the path form /action=X&P=V, the query form /?action=X&P=V
// on any path, both at once (/action=X?P=V; path parameters come first),
// and an absolute-form target (http://host/?...). action= and its alias a=
// are case-insensitive; Request.Action is the first one's value, trimmed
// of ASCII white space and with its ASCII letters upper-cased (only
// those: a non-ASCII letter never becomes an ASCII one, so only an ASCII
// spelling names an action).
// A body is read for every method except GET and HEAD:
// multipart/* bodies with mime/multipart (each named part, field or file,
// is one parameter whose value is the part's content; a text part whose
// content type names a charset other than UTF-8, as the Java client set
// to ISO-8859-1 labels every string part, is decoded from it to UTF-8);
// any other content type (text/plain; charset=ISO-8859-1 as the Java
// client sends, application/x-www-form-urlencoded, or none) as name=value
// pairs separated by &, CR, LF or CRLF. Percent escapes are decoded and +
// is a space; decoded bytes are taken as UTF-8 whatever charset the
// content type names, because clients percent-encode UTF-8 (the Java
// client labels its form body ISO-8859-1 whatever it encoded in). A pair without = is a
// parameter with an empty value; pairs with an empty name are skipped.
//
// Parameters keep the client's spelling and order: URI first, then body.
// A repeated name is kept every time; Params.Get, and so every handler,
// uses the first occurrence (the URI wins over the body). The standard
// parameters (IsStandardParam) stay in Params; ActionParams leaves them
// out. ResponseFormat selects Request.Format: xml (default, also when
// empty), simplejson or json, in any case.
//
// Errors: a malformed percent escape or an unreadable multipart body
// wraps messages.ErrBadRequest and says where it is; a multipart text
// part in an unknown charset, or not valid in it, wraps
// messages.ErrInvalidParam and names the parameter and the charset; no
// action gives a
// *messages.ParamError for Action (messages.ErrMissingParam); an unknown
// ResponseFormat gives one for ResponseFormat (messages.ErrInvalidParam).
// When several apply, a bad request wins over a missing action, which
// wins over a bad format. Parse still returns the Request it could read
// so that the error reply can name the action and use the format asked
// for. The Request copies everything it keeps (one string for all names
// and values), so the caller may reuse its buffers at once.
//
// ParseBool reads ACI Booleans (TRUE/FALSE, ON/OFF, Y/N, YES/NO, 1/0 in
// any case); Request.Int, IntRange, Bool and Require read typed
// parameters, treat an empty value as absent and report bad values as
// *messages.ParamError.
//
// # Replies
//
// A Reply is the action name, an optional *Error, and a tree of Nodes for
// <responsedata>. Encode appends it to a caller-supplied buffer without
// reflection and, for valid names and success replies, without
// allocating. All three formats are always well-formed whatever the
// strings hold:
//
//   - XML (§2.1): <?xml version='1.0' encoding='UTF-8' ?> followed by
//     <autnresponse xmlns:autn="http://schemas.autonomy.com/aci/"> with
//     action, response (SUCCESS or ERROR) and responsedata; no DOCTYPE and
//     no whitespace between elements; Content-Type text/xml; charset=UTF-8.
//     An element with neither text nor children is written <x/>. Text and
//     attribute values are escaped; characters XML 1.0 cannot carry (C0
//     controls except tab, LF and CR; U+FFFE; U+FFFF; every byte of
//     invalid UTF-8) become U+FFFD; CR, and tab and LF in attributes, are
//     written as character references so that they survive parsing.
//   - simplejson (§1.5): {"autnresponse":{"action":..,"response":..,
//     "responsedata":{..}}}. An element without attributes whose Children
//     is nil is a string (numbers stay strings); otherwise an object with
//     "@name" for attributes, "$" for non-empty text, and one key per child
//     name. A child name is an array when any element of that name is
//     marked List, or when it occurs more than once (data is never lost to
//     duplicate keys); otherwise the value itself. An element whose
//     Children is non-nil but empty (Container) is {}. The autn: prefix is
//     dropped from keys.
//   - json: BadgerFish. Every element is an object: "@name" attributes,
//     "$" text when not empty, one key per child name whose value is an
//     object when the name occurs once and an array when it occurs more
//     often (List is ignored: real json output turns a single <action>
//     into an object). As BadgerFish does, the autn: prefix is kept in
//     keys and declared once as "@xmlns":{"autn":"http://schemas.autonomy.com/aci/"}
//     on autnresponse; action and response are {"$":"..."} objects.
//     Content-Type of both JSON formats: application/json; charset=UTF-8.
//
// JSON strings escape quotes, backslashes and control characters, and
// U+2028/U+2029 (for JavaScript); invalid UTF-8 becomes U+FFFD.
//
// Names: element and attribute names must be XML names; any name that is
// not an ASCII XML name is sanitised the same way in every format: the
// autn: prefix is kept, every other character outside [A-Za-z0-9_.-]
// (other colons, non-ASCII, invalid UTF-8) becomes '_', a leading digit,
// '-' or '.' gets a '_' in front, an empty name becomes '_', and an
// attribute called xmlns becomes _xmlns. A repeated attribute is written
// once (the first). Children sharing a name need not be adjacent; JSON
// gathers them under the first one's key.
//
// # Errors
//
// ErrorFor maps a Go error onto the error table in errors.go, rendered in
// docs/errors.md (go generate ./transport/aci keeps it current; a test
// fails when it is stale). Every sentinel in messages.DomainErrors has a
// row; the first row matching with errors.Is wins; anything else is
// ERRORINTERNAL. The block is <error> with errorid, rawerrorid,
// errorstring, errordescription, errorcode and errortime in that order
// (autnResponse.xsd). errorid is "CON" + the action's letters and digits
// in upper case + the row's decimal number (CONQUEUEINFO111, shaped like
// IDOL's AXEQUERY502); rawerrorid is the same number in upper-case hex
// (0x6F). errorstring is fixed per row; errordescription is err.Error()
// without the sentinel's own words, plus the row's hint (for Cancel of a
// running action it points to QueueAction=Stop), never twice. errortime is
// 02 Jan 06 15:04:05 in the location of the time passed. errorcode is
// IDOL's where IDOL has one for the case (ERRORNOTIMPLEMENTED,
// ERRORPARAMINVALID, which an unknown token, queue or identifier gets
// too, told apart by the number); the others (ERRORMISSINGPARAM,
// ERRORQUEUEFULL, ...) are this server's, for cases no public source shows
// IDOL's code for. ACI errors are sent with HTTP status 200 (the caller's
// job).
//
// # Queue replies
//
// ActionNode, DocumentCountNode, QueueStatusNode, ProgressNode, ParamsNode
// and TokenNode build the elements of QueueInfo and asynchronous replies
// from package messages, with the element order and formats of real
// connectors: times as 2006-Jan-02 15:04:05 in the location of the now
// passed in, durations in whole seconds; see each function. The <actions>
// wrapper of GetStatus is Container("actions", nodes...), so that an empty
// queue renders as {} in simplejson. ElementNode converts repository
// results.
//
// Choices where the protocol is silent: ActionNode adds priority (always)
// and restarts (when not 0) after fetchaction; documentcount prints errors,
// task, the counters relevant to the fetch action and any non-zero one
// (§4.6, as real connectors do); QueueStatus reports pending = queued,
// running = processing + paused, completed = finished + cancelled + stopped
// + error, plus a per-state <states> block; Progress puts percent and the
// current stage in <progress> and the stage tree, depth-limited, as
// <stage name percent status> elements after it; GetActionParameters
// lists <parameter name="...">value</parameter> under <parameters>.
package aci
