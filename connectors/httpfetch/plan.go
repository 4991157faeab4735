package httpfetch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// plan is a validated fetch action: what Validate checked and Run does.
type plan struct {
	action string
	tasks  []string    // upper case, output order
	sets   []*settings // sets[i]: the settings of tasks[i] (settings)
	// one holds sets for the usual single task: prepare runs for every
	// submission (Validate), and a map by task cost two allocations.
	one [1]*settings
	// oneTask backs tasks for the usual single task, and req is the
	// parsed request: prepare runs for every submission (Validate, which
	// reuses its plans and copies tasks out), and each of them on its own
	// was an allocation.
	oneTask [1]string
	req     request

	ignored []string // parameters accepted and ignored, as sent

	ids         []idEntry   // Synchronize, Collect, Delete, Update
	destination string      // Collect
	inserts     []insertDoc // Insert
	list        listOpts    // Identifiers
}

// listOpts are the Identifiers action's parameters.
type listOpts struct {
	parents                              []string // "ROOT" or raw identifiers
	maxDepth                             int
	showNames, showTypes, showAttributes bool
	showExcluded, containersOnly         bool
	filterTypes                          []string
}

// settings returns the settings of task, one of p.tasks (nil if it is not).
func (p *plan) settings(task string) *settings {
	for i, t := range p.tasks {
		if t == task {
			return p.sets[i]
		}
	}
	return nil
}

func (p *plan) addTask(name string) {
	name = strings.ToUpper(strings.TrimSpace(name))
	for _, t := range p.tasks {
		if t == name {
			return
		}
	}
	if p.tasks == nil {
		p.tasks = p.oneTask[:0]
	}
	p.tasks = append(p.tasks, name)
}

// prepare parses and validates a fetch action. Run calls it again, so
// everything it accepts here Run can do.
func (r *Repository) prepare(action string, params messages.Params) (*plan, error) {
	p := &plan{}
	if err := r.prepareInto(p, action, params); err != nil {
		return nil, err
	}
	return p, nil
}

// prepareInto is prepare into p, a zero plan.
func (r *Repository) prepareInto(p *plan, action string, params messages.Params) error {
	own, ok := actionParams[action]
	if !ok {
		return messages.Invalid("FetchAction", action, "must be one of "+strings.Join(r.FetchActions(), ", "))
	}
	req := &p.req
	if err := r.parseRequestInto(req, params, own); err != nil {
		return err
	}
	p.action, p.ignored = action, req.ignored
	var err error
	configSection := ""
	if v, ok := req.own.Get("ConfigSection"); ok {
		configSection = strings.TrimSpace(v)
		if !r.hasTask(configSection) {
			return messages.Invalid("ConfigSection", v, "there is no such task section")
		}
	}
	needURLs := false
	switch action {
	case fetch.ActionSynchronize:
		if v, ok := req.own.Get("Identifiers"); ok {
			if p.ids, err = r.webIdentifiers("Identifiers", v, ""); err != nil {
				return err
			}
		}
		if err := r.syncTasks(p, req); err != nil {
			return err
		}
		needURLs = len(p.ids) == 0
	case fetch.ActionCollect:
		v, hasCSV := req.own.Get("Identifiers")
		x, hasXML := req.own.Get("IdentifiersXML")
		switch {
		case hasCSV && hasXML:
			return messages.Invalid("IdentifiersXML", shorten(x), "give Identifiers or IdentifiersXML, not both")
		case hasCSV:
			p.ids, err = r.webIdentifiers("Identifiers", v, configSection)
		case hasXML:
			p.ids, err = parseIdentifiersXML(x, maxXMLElements(r.cfg.Server.MaxRequestBytes))
			if err == nil {
				err = r.checkIdentifiers("IdentifiersXML", p.ids, configSection, true)
			}
		default:
			return &messages.ParamError{Name: "Identifiers", Missing: true, Reason: "Collect needs Identifiers or IdentifiersXML"}
		}
		if err != nil {
			return err
		}
		p.destination = strings.TrimSpace(req.own.Value("Destination"))
		if err := r.checkDestination(p); err != nil {
			return err
		}
		for _, e := range p.ids {
			p.addTask(r.taskName(e.id.Task))
		}
	case fetch.ActionIdentifiers:
		if configSection == "" {
			return messages.Missing("ConfigSection")
		}
		p.addTask(r.taskName(configSection))
		if p.list, err = parseListOpts(req.own, configSection); err != nil {
			return err
		}
	case fetch.ActionDelete:
		v, ok := req.own.Get("Identifiers")
		if !ok {
			return messages.Missing("Identifiers")
		}
		if p.ids, err = parseIdentifierCSV("Identifiers", v); err != nil {
			return err
		}
		if err := r.checkIdentifiers("Identifiers", p.ids, configSection, false); err != nil {
			return err
		}
		for _, e := range p.ids {
			p.addTask(r.taskName(e.id.Task))
		}
	case fetch.ActionInsert:
		if configSection == "" {
			return messages.Missing("ConfigSection")
		}
		if r.target == nil {
			return messages.Invalid("FetchAction", action, "Insert needs ingestion ([Ingestion] EnableIngestion=true)")
		}
		v, ok := req.own.Get("InsertXML")
		if !ok {
			return messages.Missing("InsertXML")
		}
		if p.inserts, err = parseInsertXML(v, maxXMLElements(r.cfg.Server.MaxRequestBytes)); err != nil {
			return err
		}
		if err := r.checkInsertFiles(p.inserts); err != nil {
			return err
		}
		p.addTask(r.taskName(configSection))
	case fetch.ActionUpdate:
		if r.target == nil {
			return messages.Invalid("FetchAction", action, "Update needs ingestion ([Ingestion] EnableIngestion=true)")
		}
		x, ok := req.own.Get("IdentifiersXML")
		if !ok {
			return messages.Missing("IdentifiersXML")
		}
		if p.ids, err = parseIdentifiersXML(x, maxXMLElements(r.cfg.Server.MaxRequestBytes)); err != nil {
			return err
		}
		if err := r.checkIdentifiers("IdentifiersXML", p.ids, configSection, true); err != nil {
			return err
		}
		for _, e := range p.ids {
			p.addTask(r.taskName(e.id.Task))
		}
	}
	var layers []layer // made when a task's settings must be resolved
	p.sets = p.one[:0]
	for _, t := range p.tasks {
		s, err := r.settingsFor(t, req, &layers, needURLs)
		if err != nil {
			return err
		}
		p.sets = append(p.sets, s)
	}
	return nil
}

// settingsFor resolves task's settings for a request, reusing the ones
// New computed when the request overrides nothing. *layers is the
// request's layers (r.layers), made on first use and kept for the next
// task.
func (r *Repository) settingsFor(task string, req *request, layers *[]layer, needURLs bool) (*settings, error) {
	if len(req.overrides) == 0 && req.fragment == nil {
		if s, ok := r.base[strings.ToUpper(task)]; ok {
			return s, nil
		}
	}
	if *layers == nil {
		*layers = r.layers(req)
	}
	s, err := r.schema.resolve(task, *layers, needURLs, r.keys.decryptKey)
	if err == nil {
		file := r.file[strings.ToUpper(task)]
		if file == nil { // a task listed in [FetchTasks] without a section of its own
			file = r.schema.defaults(task)
		}
		err = r.checkRequestSettings(s, file)
	}
	if err != nil {
		var ce *config.Error
		switch {
		case errors.Is(err, errNoStartURL):
			return nil, missingURL(task)
		case errors.As(err, &ce) && ce.Key != "":
			// A setting of the file that the request's overrides make
			// wrong (its RenderQuietWindow with the request's shorter
			// RenderDeadline): named with the file's value.
			v, _ := r.cfg.Section(ce.Section).Get(ce.Key)
			return nil, messages.Invalid("["+ce.Section+"] "+ce.Key, r.schema.shownValue(ce.Key, v), ce.Err.Error())
		case errors.As(err, &ce): // a task section New did not check
			return nil, messages.Invalid("["+ce.Section+"]", "", ce.Err.Error())
		}
		return nil, err
	}
	return s, nil
}

// syncTasks sets a Synchronize's tasks: TaskSections (or ConfigSection,
// which clients also send for one task, as the other fetch actions take
// it), else the tasks of its Identifiers, else every task of [FetchTasks].
func (r *Repository) syncTasks(p *plan, req *request) error {
	param := "TaskSections"
	v, ok := req.own.Get(param)
	if cs, has := req.own.Get("ConfigSection"); has {
		if ok {
			return messages.Invalid("ConfigSection", cs, "give TaskSections or ConfigSection, not both")
		}
		param, v, ok = "ConfigSection", cs, true
	}
	if ok {
		names := splitCSV(v)
		if len(names) == 0 {
			return messages.Invalid(param, v, "must list at least one task section")
		}
		for _, n := range names {
			if !r.hasTask(n) {
				return messages.Invalid(param, n, "there is no such task section")
			}
			p.addTask(r.taskName(n))
		}
		for _, e := range p.ids {
			if !containsFold(p.tasks, e.id.Task) {
				return messages.Invalid("Identifiers", e.raw, fmt.Sprintf("belongs to task %s, which %s does not name", e.id.Task, param))
			}
		}
		return nil
	}
	if len(p.ids) > 0 {
		for _, e := range p.ids {
			p.addTask(r.taskName(e.id.Task))
		}
		return nil
	}
	if len(r.tasks) == 0 {
		return &messages.ParamError{Name: "TaskSections", Missing: true, Reason: "[FetchTasks] lists no task"}
	}
	for _, t := range r.tasks {
		p.addTask(r.taskName(t))
	}
	return nil
}

// webIdentifiers reads a CSV of identifiers of pages (fetchable URLs).
func (r *Repository) webIdentifiers(name, v, configSection string) ([]idEntry, error) {
	ids, err := parseIdentifierCSV(name, v)
	if err != nil {
		return nil, err
	}
	return ids, r.checkIdentifiers(name, ids, configSection, true)
}

// checkIdentifiers checks that each identifier names a configured task
// (configSection, when given) and, with web, a fetchable URL.
func (r *Repository) checkIdentifiers(name string, ids []idEntry, configSection string, web bool) error {
	for _, e := range ids {
		switch {
		case !r.hasTask(e.id.Task):
			return messages.Invalid(name, e.raw, fmt.Sprintf("names task %s, which is not configured", e.id.Task))
		case configSection != "" && !strings.EqualFold(configSection, e.id.Task):
			return messages.Invalid(name, e.raw, fmt.Sprintf("belongs to task %s, not to ConfigSection %s", e.id.Task, configSection))
		case web && !isWebURL(e.id.Reference):
			return messages.Invalid(name, e.raw, fmt.Sprintf("%q is not an http or https URL", e.id.Reference))
		}
	}
	return nil
}

// checkDestination requires a Collect destination for every identifier,
// inside [Security] CollectFolders. It touches no file: whether the folder
// exists is found out (and it is created) when the action runs.
func (r *Repository) checkDestination(p *plan) error {
	if p.destination != "" {
		if err := r.collectDestination("Destination", p.destination); err != nil {
			return err
		}
	}
	for _, e := range p.ids {
		switch {
		case e.destination != "":
			if err := r.collectDestination("IdentifiersXML", e.destination); err != nil {
				return err
			}
		case p.destination == "":
			return &messages.ParamError{Name: "Destination", Missing: true, Reason: "Collect writes the items to this folder (inside [Security] CollectFolders)"}
		}
	}
	return nil
}

// listBools are the Identifiers action's true/false parameters, in the
// order parseListOpts sets them.
var listBools = [...]string{"ShowNames", "ShowTypes", "ShowAttributes", "ShowExcluded", "ContainersOnly"}

// rootOnly is listOpts.parents when ParentIdentifiers is not given: one
// slice shared by every plan, which only reads it.
var rootOnly = []string{"ROOT"}

// parseListOpts reads the Identifiers action's parameters.
func parseListOpts(own messages.Params, task string) (listOpts, error) {
	o := listOpts{maxDepth: 1, showNames: true, showTypes: true, showAttributes: true}
	// Set by index rather than through pointers into o, which would move o
	// to the heap on every Identifiers action.
	for i, name := range listBools {
		v, ok := own.Get(name)
		if !ok {
			continue
		}
		x, err := config.Bool(v)
		if err != nil {
			return o, messages.Invalid(name, v, "must be true or false")
		}
		switch i {
		case 0:
			o.showNames = x
		case 1:
			o.showTypes = x
		case 2:
			o.showAttributes = x
		case 3:
			o.showExcluded = x
		case 4:
			o.containersOnly = x
		}
	}
	if v, ok := own.Get("MaxDepth"); ok {
		n, err := intIn(v, 0, 1<<31-1, "0 (unlimited) or a positive whole number")
		if err != nil {
			return o, messages.Invalid("MaxDepth", v, err.Error())
		}
		o.maxDepth = n
	}
	o.filterTypes = splitCSV(own.Value("FilterTypes"))
	o.parents = rootOnly
	if v, ok := own.Get("ParentIdentifiers"); ok {
		o.parents = nil
		for _, raw := range splitCSV(v) {
			if strings.EqualFold(raw, "ROOT") {
				o.parents = append(o.parents, "ROOT")
				continue
			}
			id, err := DecodeIdentifier(raw)
			if err != nil {
				return o, messages.Invalid("ParentIdentifiers", raw, err.Error())
			}
			if !strings.EqualFold(id.Task, task) {
				return o, messages.Invalid("ParentIdentifiers", raw, fmt.Sprintf("belongs to task %s, not to ConfigSection %s", id.Task, task))
			}
			o.parents = append(o.parents, raw)
		}
		if len(o.parents) == 0 {
			return o, messages.Invalid("ParentIdentifiers", v, "must list ROOT or identifiers")
		}
	}
	return o, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
