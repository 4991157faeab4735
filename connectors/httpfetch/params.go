package httpfetch

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/ingest"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

// actionParams are the parameters each fetch action takes besides Config
// and setting overrides ([Section]Setting=Value or Setting=Value).
var actionParams = map[string][]string{
	fetch.ActionSynchronize: {"TaskSections", "ConfigSection", "Identifiers"},
	fetch.ActionCollect:     {"Identifiers", "IdentifiersXML", "Destination", "ConfigSection"},
	fetch.ActionIdentifiers: {"ConfigSection", "ParentIdentifiers", "MaxDepth", "ShowNames", "ShowTypes", "ShowAttributes", "ShowExcluded", "ContainersOnly", "FilterTypes"},
	fetch.ActionDelete:      {"Identifiers", "ConfigSection"},
	fetch.ActionInsert:      {"ConfigSection", "InsertXML"},
	fetch.ActionUpdate:      {"IdentifiersXML", "ConfigSection"},
}

// viewParams are View's own parameters (the front end reads NoACI,
// WithMetadata and Range; they reach View too).
var viewParams = []string{"Identifier", "NoACI", "WithMetadata", "Range"}

// request is a fetch action's parameters sorted out: the action's own, the
// setting overrides and the Config fragment, and the names of the
// parameters that are none of these (ignored).
type request struct {
	own       messages.Params
	overrides reqLayer
	fragment  *config.Config
	ignored   []string
	// ownBuf backs own for the usual one or two parameters of the
	// action's own (an allocation of its own for every submission).
	ownBuf [2]*messages.Param
}

// parseRequest sorts params out and validates every override.
//
// As IDOL connectors do, a parameter that is none of own, Config, a task
// setting (Setting=Value) or a task setting of a section
// ([Section]Setting=Value) is accepted and ignored: scripts written for
// IDOL send parameters this connector does not have. Its name is kept in
// request.ignored (the caller logs it). A parameter that names a task
// setting is an override, and a value that is invalid for that setting is
// still refused, naming the setting; so is an override addressed to a
// section that is not a task, [FetchTasks] or [Default], which would take
// no effect.
func (r *Repository) parseRequest(params messages.Params, own []string) (*request, error) {
	req := &request{}
	if err := r.parseRequestInto(req, params, own); err != nil {
		return nil, err
	}
	return req, nil
}

// parseRequestInto is parseRequest into req, a zero request (a plan's,
// see prepareInto).
func (r *Repository) parseRequestInto(req *request, params messages.Params, own []string) error {
	req.own = req.ownBuf[:0]
	for _, p := range params {
		// A name is ASCII, and so are its case and the white space
		// around it (docs/protocol.md): Depth\u00a0 or a Kelvin sign for
		// a k names nothing, and is ignored, so that a proxy that
		// refuses a setting by name cannot be walked around that way.
		name := messages.TrimASCIISpace(p.GetName())
		value := p.GetValue()
		switch {
		case strings.HasPrefix(name, "["):
			o, known, err := r.parseOverride(name, value)
			if err != nil {
				return err
			}
			if !known {
				req.ignored = append(req.ignored, name)
				continue
			}
			req.overrides = append(req.overrides, o)
		case slices.ContainsFunc(own, func(s string) bool { return messages.IsValue(name, s) }):
			req.own = append(req.own, p)
		case strings.EqualFold(name, "Config"):
			if req.fragment != nil {
				continue // the first occurrence wins, as for every parameter
			}
			frag, err := r.parseFragment(value)
			if err != nil {
				return err
			}
			req.fragment = frag
		default:
			key := ""
			if isASCII(name) {
				key = r.schema.knownKey(name)
			}
			if key == "" {
				req.ignored = append(req.ignored, name)
				continue
			}
			if err := r.schema.checkOverride(name, key, value); err != nil {
				return err
			}
			req.overrides = append(req.overrides, override{key: name, value: value})
		}
	}
	if len(req.own) == 0 {
		req.own = nil
	}
	return nil
}

// parseOverride reads "[Section]Setting". known is false, with no error,
// for a name that is not of that form or whose Setting is not a task
// setting: such a parameter is ignored.
func (r *Repository) parseOverride(name, value string) (o override, known bool, err error) {
	end := strings.IndexByte(name, ']')
	if end < 0 {
		return override{}, false, nil
	}
	sec, key := messages.TrimASCIISpace(name[1:end]), messages.TrimASCIISpace(name[end+1:])
	canon := ""
	if isASCII(key) { // a task's name may be any text; a setting's is ASCII
		canon = r.schema.knownKey(key)
	}
	if sec == "" || canon == "" {
		return override{}, false, nil
	}
	full := "[" + sec + "] " + key
	if !strings.EqualFold(sec, "FetchTasks") && !strings.EqualFold(sec, "Default") && !r.hasTask(sec) {
		return override{}, true, messages.Invalid(full, r.schema.shownValue(key, value), fmt.Sprintf("there is no task section [%s]", sec))
	}
	if err := r.schema.checkOverride(full, canon, value); err != nil {
		return override{}, true, err
	}
	return override{section: sec, key: key, value: value}, true, nil
}

// checkOverride validates an override's value; schedule keys cannot be
// overridden.
func (sc *Schema) checkOverride(name, key, value string) error {
	if k := sc.spec(key); k != nil && k.schedule {
		return messages.Invalid(name, value, "schedules are set in the configuration file only")
	} else if k != nil && k.fileOnly {
		return messages.Invalid(name, sc.shownValue(key, value), k.name+" is set in the configuration file only")
	}
	if err := sc.TaskKeys(key, value); err != nil {
		return messages.Invalid(name, sc.shownValue(key, value), err.Error())
	}
	return nil
}

// maxFragmentBytes bounds a request's Config parameter (its base64 text,
// about 768 KiB of configuration): a fragment is read again, to redact its
// secrets, each time the action's parameters are shown (GetActionParameters),
// at about 25 to 75 ns per byte, and read and checked at submission at up
// to 1.5 us per byte. Under MaxRequestBytes alone (64 MiB), one fragment
// cost about 1 to 5 s of CPU at each showing, for as long as the action
// was kept. A task configuration that large belongs in the file.
const maxFragmentBytes = 1 << 20

// checkFragmentSize refuses a request with a Config parameter longer
// than maxFragmentBytes, before it is read. Every Config is checked, not
// only the first, which the action reads: Seal and Redact read them all
// (a later one may hold secrets too), so a later one costs what the bound
// is for. Only requests are checked (Validate, View): an action queued
// before the bound runs with the fragment it was accepted with.
func checkFragmentSize(params messages.Params) error {
	for _, p := range params {
		if !strings.EqualFold(strings.TrimSpace(p.GetName()), "Config") {
			continue
		}
		if n := len(p.GetValue()); n > maxFragmentBytes {
			// Shown by its size, as the request log shows it: the
			// value may hold secrets.
			return messages.Invalid("Config", fragmentSize(p.GetValue()),
				fmt.Sprintf("a Config fragment may be at most %d bytes (base64); set a larger task configuration in the configuration file", maxFragmentBytes))
		}
	}
	return nil
}

// parseFragment reads the Config parameter: base64 of configuration text
// whose task sections, [FetchTasks] and [Default] override the file's for
// this action. It is read with the configuration file's rules (and its
// reader: the sections checked are the sections read, whatever the text's
// encoding); other system sections, task lists, unknown tasks and schedule
// keys are refused.
func (r *Repository) parseFragment(value string) (*config.Config, error) {
	data, err := decodeBase64(value)
	if err != nil || strings.TrimSpace(value) == "" {
		return nil, messages.Invalid("Config", secret.Redacted, "must be base64 of configuration text")
	}
	frag, err := config.Parse("Config parameter", data, r.schema.TaskKeys)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			if ce.Section != "" {
				// A section the fragment may not have at all is the
				// error to report, whatever else is wrong inside it.
				if serr := r.checkFragmentSection(ce.Section); serr != nil {
					return nil, serr
				}
			}
			name := "Config"
			if ce.Section != "" {
				name += " [" + ce.Section + "]"
			}
			if ce.Key != "" {
				name += " " + ce.Key
			}
			if ce.Key == "" {
				// What is wrong is the text (a line that is no setting,
				// a NUL byte, a section given twice), not one value: the
				// fragment is shown by its size, never as "".
				return nil, messages.Invalid(name, fragmentSize(value), ce.Err.Error())
			}
			return nil, messages.Invalid(name, r.schema.shownValue(ce.Key, fragmentValue(data, ce.Section, ce.Key)), ce.Err.Error())
		}
		return nil, messages.Invalid("Config", secret.Redacted, err.Error())
	}
	names := frag.SectionNames()
	for _, name := range names {
		if err := r.checkFragmentSection(name); err != nil {
			return nil, err
		}
	}
	if len(frag.FetchTasks) > 0 {
		return nil, messages.Invalid("Config [FetchTasks]", fragmentSize(value), "a request cannot list tasks; name them with TaskSections or ConfigSection")
	}
	for _, name := range names {
		sec := frag.Section(name)
		if sec == nil {
			continue
		}
		for _, kv := range sec.Keys {
			if k := r.schema.spec(kv.Key); k != nil && k.schedule {
				return nil, messages.Invalid("Config ["+name+"] "+kv.Key, kv.Value, "schedules are set in the configuration file only")
			} else if k != nil && k.fileOnly {
				return nil, messages.Invalid("Config ["+name+"] "+kv.Key, r.schema.shownValue(kv.Key, kv.Value), k.name+" is set in the configuration file only")
			}
		}
	}
	return frag, nil
}

// checkFragmentSection refuses a section a Config fragment may not have:
// a system section other than [FetchTasks] and [Default], or a task the
// configuration file does not have.
func (r *Repository) checkFragmentSection(name string) error {
	switch {
	case strings.EqualFold(name, "FetchTasks"), strings.EqualFold(name, "Default"):
		return nil
	case config.IsSystemSection(name):
		return messages.Invalid("Config", "["+name+"]", "a request can override task settings only ([Task], [FetchTasks], [Default])")
	case !r.hasTask(name):
		return messages.Invalid("Config", "["+name+"]", fmt.Sprintf("there is no task section [%s]", name))
	}
	return nil
}

// fragmentSize is how an error shows a Config parameter it does not quote
// (its text may hold secrets), as GetRequestLog shows a long one: "[N
// bytes]".
func fragmentSize(value string) string { return fmt.Sprintf("[%d bytes]", len(value)) }

// fragmentValue finds the value of key in section of a fragment, for an
// error message (best effort).
func fragmentValue(data []byte, section, key string) string {
	if key == "" {
		return ""
	}
	in := section == ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			end := strings.IndexByte(line, ']')
			in = end > 0 && strings.EqualFold(strings.TrimSpace(line[1:end]), section)
			continue
		}
		if k, v, ok := strings.Cut(line, "="); in && ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// layers returns the setting layers of a request, highest precedence
// first.
func (r *Repository) layers(req *request) []layer {
	var ls []layer
	if len(req.overrides) > 0 {
		ls = append(ls, req.overrides)
	}
	if req.fragment != nil {
		ls = append(ls, cfgLayer{c: req.fragment, kind: srcFragment})
	}
	return append(ls, cfgLayer{c: r.cfg, kind: srcFile})
}

// idEntry is one identifier of a request, with what IdentifiersXML adds.
type idEntry struct {
	raw         string // as sent
	id          Identifier
	destination string
	filename    string
	metadata    []ingest.Field
}

// parseIdentifierCSV reads the Identifiers parameter.
func parseIdentifierCSV(name, v string) ([]idEntry, error) {
	var out []idEntry
	for _, raw := range splitCSV(v) {
		id, err := DecodeIdentifier(raw)
		if err != nil {
			return nil, messages.Invalid(name, raw, err.Error())
		}
		out = append(out, idEntry{raw: raw, id: id})
	}
	if len(out) == 0 {
		return nil, messages.Invalid(name, v, "must list at least one identifier")
	}
	return out, nil
}

// parseIdentifiersXML reads IdentifiersXML:
// <identifier value="ID" destination=".." filename=".."><metadata name=".." value=".."/>...</identifier>...
// (any wrapper element is allowed; <acl_update> is ignored).
func parseIdentifiersXML(v string, maxElements int) ([]idEntry, error) {
	const name = "IdentifiersXML"
	roots, err := parseXML(v, maxElements)
	if err != nil {
		if errors.Is(err, errXMLElements) {
			return nil, xmlTooLarge(name, maxElements)
		}
		return nil, messages.Invalid(name, shorten(v), "not well-formed XML: "+err.Error())
	}
	var out []idEntry
	for _, n := range findAll(roots, "identifier") {
		raw, ok := n.attr("value")
		if !ok {
			raw = strings.TrimSpace(n.text.String())
		}
		id, err := DecodeIdentifier(raw)
		if err != nil {
			return nil, messages.Invalid(name, raw, err.Error())
		}
		e := idEntry{raw: raw, id: id}
		e.destination, _ = n.attr("destination")
		e.filename, _ = n.attr("filename")
		if e.filename != "" && (strings.ContainsAny(e.filename, `/\`) || e.filename == "." || e.filename == "..") {
			return nil, messages.Invalid(name, e.filename, "filename must be a plain file name")
		}
		for _, m := range n.kids {
			if m.name != "metadata" {
				continue
			}
			f, err := metadatum(m)
			if err != nil {
				return nil, messages.Invalid(name, raw, err.Error())
			}
			e.metadata = append(e.metadata, f)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, messages.Invalid(name, shorten(v), "has no <identifier value=\"...\"> element")
	}
	return out, nil
}

// xmlTooLarge is the error of a parameter's XML with more elements than
// allowed.
func xmlTooLarge(name string, maxElements int) error {
	return fmt.Errorf("%w: %s has more than %d XML elements (one per %d bytes of [Server] MaxRequestBytes)",
		messages.ErrTooLarge, name, maxElements, xmlBytesPerElement)
}

// metadatum reads <metadata name="N" value="V"/> as a field, checked with
// the ingestion rules for field names.
func metadatum(n *xnode) (ingest.Field, error) {
	f := ingest.Field{}
	f.Name, _ = n.attr("name")
	f.Name = strings.TrimSpace(f.Name)
	var ok bool
	if f.Value, ok = n.attr("value"); !ok {
		f.Value = n.text.String()
	}
	d := ingest.Document{Reference: "x", Fields: []ingest.Field{f}}
	if err := d.Validate(); err != nil {
		return f, fmt.Errorf("metadata name %q: %s", f.Name, strings.TrimPrefix(err.Error(), "ingest: "))
	}
	return f, nil
}

// insertDoc is one document of InsertXML.
type insertDoc struct {
	reference   string
	insertID    string
	metadata    []ingest.Field
	fileType    string // content, drecontent, file, tempfile; "" without <file>
	displayName string
	content     []byte // decoded bytes (content) or text (drecontent)
	path        string // file, tempfile
}

// parseInsertXML reads InsertXML: one document given directly
// (<insertXML><reference/>...<file/></insertXML>) or several <insert>
// elements, each with <reference>, <metadata name value/>*, <file> with
// <type> (content: base64 bytes; drecontent: the text itself; file or
// tempfile: a path on the server; dataid is not supported), <content>,
// <displayname>, and <insert_id>. <property> and <section> are accepted
// and ignored.
func parseInsertXML(v string, maxElements int) ([]insertDoc, error) {
	const name = "InsertXML"
	roots, err := parseXML(v, maxElements)
	if err != nil {
		if errors.Is(err, errXMLElements) {
			return nil, xmlTooLarge(name, maxElements)
		}
		return nil, messages.Invalid(name, shorten(v), "not well-formed XML: "+err.Error())
	}
	var nodes []*xnode
	var walk func([]*xnode)
	walk = func(ns []*xnode) {
		for _, n := range ns {
			if n.name == "insert" || n.child("reference") != nil {
				nodes = append(nodes, n)
				continue
			}
			walk(n.kids)
		}
	}
	walk(roots)
	if len(nodes) == 0 {
		return nil, messages.Invalid(name, shorten(v), "has no document (an <insert> or a <reference>)")
	}
	out := make([]insertDoc, 0, len(nodes))
	for _, n := range nodes {
		d := insertDoc{reference: n.childText("reference"), insertID: n.childText("insert_id")}
		probe := ingest.Document{Reference: d.reference}
		if err := probe.Validate(); err != nil {
			return nil, messages.Invalid(name, d.reference, "reference: "+strings.TrimPrefix(err.Error(), "ingest: "))
		}
		for _, m := range n.kids {
			if m.name != "metadata" {
				continue
			}
			f, err := metadatum(m)
			if err != nil {
				return nil, messages.Invalid(name, d.reference, err.Error())
			}
			d.metadata = append(d.metadata, f)
		}
		if f := n.child("file"); f != nil {
			if err := d.readFile(f); err != nil {
				return nil, messages.Invalid(name, d.reference, err.Error())
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func (d *insertDoc) readFile(f *xnode) error {
	d.fileType = strings.ToLower(f.childText("type"))
	if d.fileType == "" {
		d.fileType = "file"
	}
	d.displayName = f.childText("displayname")
	c := f.child("content")
	if c == nil {
		return errors.New("<file> needs a <content>")
	}
	raw := c.text.String()
	switch d.fileType {
	case "content":
		b, err := decodeBase64(raw)
		if err != nil {
			return errors.New("<file><type>content</type> needs base64 in <content>")
		}
		d.content = b
	case "drecontent":
		d.content = []byte(raw)
	case "file", "tempfile":
		// A path on the server: Validate checks it against [Security]
		// InsertFolders (checkInsertFiles), touching nothing outside them.
		d.path = strings.TrimSpace(raw)
		if d.path == "" {
			return errors.New("<file><content> must name a file")
		}
	case "dataid":
		return errors.New("<file><type>dataid</type> is not supported (no Data Server)")
	default:
		return fmt.Errorf("<file><type> %q: must be content, drecontent, file or tempfile", d.fileType)
	}
	return nil
}
