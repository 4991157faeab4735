package restsync

import (
	"fmt"
	"slices"
	"strings"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/store"
)

// The fetch actions of the REST connectors.
const (
	ActionSynchronize = fetch.ActionSynchronize
	ActionCollect     = fetch.ActionCollect
	ActionIdentifiers = fetch.ActionIdentifiers
	ActionDelete      = fetch.ActionDelete
	ActionInsert      = fetch.ActionInsert
)

// ActionParams are each fetch action's own parameters.
var ActionParams = map[string][]string{
	ActionSynchronize: {"TaskSections", "ConfigSection"},
	ActionCollect:     {"Identifiers", "Destination", "ConfigSection"},
	ActionIdentifiers: {"ConfigSection"},
	ActionDelete:      {"Identifiers", "ConfigSection"},
	ActionInsert:      {"ConfigSection", "InsertXML"},
}

// Tasks are what Prepare needs to know of a connector's tasks.
type Tasks struct {
	// Actions are the connector's fetch actions (upper case).
	Actions []string
	// Listed are the [FetchTasks] tasks, upper case (a Synchronize without
	// TaskSections or ConfigSection runs them).
	Listed []string
	// Has reports whether a task section (upper case) is configured.
	Has func(task string) bool
	// Identifier decodes an identifier to its task (upper case); err says
	// why a value is not one.
	Identifier func(raw string) (task string, err error)
	// CollectFolders are [Security] CollectFolders.
	CollectFolders []string
}

// Action is a validated fetch action.
type Action struct {
	Action string
	// Tasks the action reports counts for, in order.
	Tasks []string
	// IDs of Collect and Delete, with their tasks.
	IDs []ID
	// Destination of Collect.
	Destination CollectDir
	// InsertXML of Insert, unparsed (the connector parses it).
	InsertXML string
	// Ignored are parameters that are not the action's own.
	Ignored []string
}

// ID is one identifier of a request.
type ID struct {
	Raw  string
	Task string
}

// Prepare checks an action's parameters. Parameters that are not the
// action's own are ignored (Ignored lists them), as IDOL connectors do;
// task settings cannot be overridden by a request.
func (t *Tasks) Prepare(action string, params messages.Params) (*Action, error) {
	own, ok := ActionParams[action]
	if !ok || !slices.Contains(t.Actions, action) {
		return nil, messages.Invalid("FetchAction", action, "must be one of "+strings.Join(t.Actions, ", "))
	}
	req := &Action{Action: action}
	for _, p := range params {
		if !slices.ContainsFunc(own, func(o string) bool { return strings.EqualFold(o, strings.TrimSpace(p.GetName())) }) {
			req.Ignored = append(req.Ignored, p.GetName())
		}
	}
	section := ""
	if v, ok := params.Get("ConfigSection"); ok {
		section = strings.ToUpper(strings.TrimSpace(v))
		if !t.Has(section) {
			return nil, messages.Invalid("ConfigSection", v, "there is no such task section")
		}
	}
	addTask := func(name string) {
		if !slices.Contains(req.Tasks, name) {
			req.Tasks = append(req.Tasks, name)
		}
	}
	switch action {
	case ActionSynchronize:
		if v, ok := params.Get("TaskSections"); ok {
			for _, name := range CSV(v) {
				if !t.Has(strings.ToUpper(name)) {
					return nil, messages.Invalid("TaskSections", name, "there is no such task section")
				}
				addTask(strings.ToUpper(name))
			}
			if len(req.Tasks) == 0 {
				return nil, messages.Invalid("TaskSections", v, "must name at least one task section")
			}
		} else if section != "" {
			addTask(section)
		} else {
			req.Tasks = slices.Clone(t.Listed)
			if len(req.Tasks) == 0 {
				return nil, &messages.ParamError{Name: "TaskSections", Missing: true, Reason: "[FetchTasks] lists no task: name one with TaskSections or ConfigSection"}
			}
		}
	case ActionCollect, ActionDelete:
		v, ok := params.Get("Identifiers")
		if !ok {
			return nil, messages.Missing("Identifiers")
		}
		for _, raw := range CSV(v) {
			task, err := t.Identifier(raw)
			if err != nil {
				return nil, messages.Invalid("Identifiers", raw, err.Error())
			}
			if !t.Has(task) {
				return nil, messages.Invalid("Identifiers", raw, "names task "+task+", which is not configured")
			}
			if section != "" && task != section {
				return nil, messages.Invalid("Identifiers", raw, "belongs to task "+task+", not to ConfigSection "+section)
			}
			req.IDs = append(req.IDs, ID{Raw: raw, Task: task})
			addTask(task)
		}
		if len(req.IDs) == 0 {
			return nil, messages.Invalid("Identifiers", v, "must list at least one identifier")
		}
		if action == ActionCollect {
			dest := strings.TrimSpace(params.Value("Destination"))
			d, err := ConfineCollect(t.CollectFolders, dest)
			if err != nil {
				return nil, messages.Invalid("Destination", dest, err.Error())
			}
			req.Destination = d
		}
	case ActionIdentifiers:
		if section == "" {
			return nil, messages.Missing("ConfigSection")
		}
		addTask(section)
	case ActionInsert:
		if section == "" {
			return nil, messages.Missing("ConfigSection")
		}
		addTask(section)
		v, ok := params.Get("InsertXML")
		if !ok {
			return nil, messages.Missing("InsertXML")
		}
		req.InsertXML = v
	}
	return req, nil
}

// Counts returns the job's counters of task (a detached set when the job
// does not report on it).
func Counts(job *fetch.Job, task string) *fetch.Counts {
	if c := job.Counts(task); c != nil {
		return c
	}
	return &fetch.Counts{Task: task}
}

// TaskList answers TaskList for the given tasks (upper case, in order)
// from their datastores' TaskMeta.
func TaskList(st store.Store, names []string) ([]fetch.TaskInfo, error) {
	return TaskListOf(st, names, ReadMeta)
}

// TaskListOf is TaskList for a connector that keeps its own meta record:
// read returns it as a TaskMeta.
func TaskListOf(st store.Store, names []string, read func(ds store.Datastore) (*TaskMeta, error)) ([]fetch.TaskInfo, error) {
	stored, err := st.DatastoreNames()
	if err != nil {
		return nil, fmt.Errorf("task list: %w", err)
	}
	info := st.Info()
	where := info.Path
	if info.InMemory || where == "" {
		where = "memory"
	}
	var out []fetch.TaskInfo
	for _, name := range names {
		ti := fetch.TaskInfo{Name: name, Datastore: where + " [datastore " + name + "]"}
		if slices.Contains(stored, name) {
			ds, err := st.Datastore(name)
			if err != nil {
				return nil, fmt.Errorf("task list: %s: %w", name, err)
			}
			m, err := read(ds)
			if err != nil {
				return nil, fmt.Errorf("task list: %s: %w", name, err)
			}
			ti.Action, ti.Calls = m.Action, m.Calls
			ti.LastStart, ti.LastFinish = MsTime(m.LastStartMs), MsTime(m.LastFinishMs)
		}
		out = append(out, ti)
	}
	return out, nil
}
