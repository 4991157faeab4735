package httpd

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// actionNames spells every action this server answers as IDOL's
// documentation does (routes are keyed in upper case). A test checks every
// route has one.
var actionNames = map[string]string{
	"FETCH": "Fetch", "QUEUEINFO": "QueueInfo", "VIEW": "View", "TASKLIST": "TaskList",
	"GETVERSION": "GetVersion", "GETSTATUS": "GetStatus", "GETREQUESTLOG": "GetRequestLog",
	"GETPID": "GetPid", "GETLICENSEINFO": "GetLicenseInfo", "THREADSTATUS": "ThreadStatus",
	"SHOWPERMISSIONS": "ShowPermissions", "ADMIN": "Admin", "GETSTATUSINFO": "GetStatusInfo", "STOP": "Stop",
}

// generalActions are the actions every IDOL ACI server answers; the others
// are the connector's own. GetLicenseInfo lists them in two sections.
var generalActions = []string{"ADMIN", "GETLICENSEINFO", "GETPID", "GETREQUESTLOG", "GETSTATUS", "GETVERSION", "SHOWPERMISSIONS", "THREADSTATUS"}

// notServed explains the standard ACI actions (named in the official
// client's constants) that this server does not answer.
var notServed = map[string]string{
	"GETCHILDREN": "GetChildren lists the child connectors of IDOL's Distributed Connector (and the child servers " +
		"of a Distributed Action Handler); this connector has no child servers",
	"ENCRYPTED": "this server does not take encrypted requests (ACI encryption, action=Encrypted, is an OEM " +
		"licensing feature); send the action in clear",
}

// unknownAction is the error for an action this server does not answer:
// ERRORNOTIMPLEMENTED, saying why for the standard actions it leaves out.
func unknownAction(action string) error {
	if why, ok := notServed[action]; ok {
		return fmt.Errorf("%w: %s is not an action of this server: %s", messages.ErrUnknownAction, action, why)
	}
	return fmt.Errorf("%w: %s is not an action of this server", messages.ErrUnknownAction, action)
}

// getPid serves GetPid: the server's process id, as <autn:pid> (OpenText's
// container scripts wait for a server by reading that element).
func (s *Server) getPid(context.Context, *aci.Request) (*result, error) {
	return &result{data: []aci.Node{aci.TextNode("autn:pid", strconv.Itoa(os.Getpid()))}}, nil
}

// getLicenseInfo serves GetLicenseInfo in the shape of a real server's
// reply (the official Java client's fixture): <autn:license> then
// <autn:actions> with one <autn:section> per group of actions, each action
// with <autn:licensed>. This server needs no licence key: the licence is
// valid, none is required, and every action it answers is licensed.
func (s *Server) getLicenseInfo(context.Context, *aci.Request) (*result, error) {
	n := func(name, text string) aci.Node { return aci.TextNode("autn:"+name, text) }
	var general, connector []string
	for route := range s.routes {
		if slices.Contains(generalActions, route) {
			general = append(general, actionName(route))
		} else {
			connector = append(connector, actionName(route))
		}
	}
	section := func(name string, actions []string) aci.Node {
		slices.Sort(actions)
		ch := []aci.Node{n("name", name)}
		for _, a := range actions {
			ch = append(ch, aci.Node{Name: "autn:action", List: true, Children: []aci.Node{n("name", a), n("licensed", "true")}})
		}
		return aci.Node{Name: "autn:section", List: true, Children: ch}
	}
	return &result{data: []aci.Node{
		aci.Container("autn:license",
			n("validlicense", "true"),
			n("licenserequired", "false"),
			n("description", s.cfg.Version.Product+" is open-source software: it needs no licence key, "+
				"no licence server, and no OEM key, and every action it answers is available.")),
		aci.Container("autn:actions", section("Connector", connector), section("General", general)),
	}}, nil
}

// actionName is an action's documented spelling.
func actionName(route string) string {
	if n, ok := actionNames[route]; ok {
		return n
	}
	return route
}

// threadStatus serves ThreadStatus: the fetch queue's worker threads
// ([Actions] MaximumThreads), by number, and what each runs: Idle, or Busy
// with the action's token, fetch action, status, start time and seconds
// since. A stopped action keeps its thread (Busy, status Stopped) while its
// work unwinds.
func (s *Server) threadStatus(ctx context.Context, _ *aci.Request) (*result, error) {
	threads, err := s.cfg.Queue.ThreadStatus(ctx)
	if err != nil {
		return nil, err
	}
	n := func(name, text string) aci.Node { return aci.TextNode("autn:"+name, text) }
	now := s.cfg.Now()
	nodes := make([]aci.Node, 0, len(threads))
	for _, th := range threads {
		ch := []aci.Node{n("number", strconv.Itoa(th.Number)), n("queue", s.cfg.Queue.Name())}
		a := th.Action
		if a == nil {
			ch = append(ch, n("status", "Idle"))
		} else {
			ch = append(ch, n("status", "Busy"), n("token", a.GetToken()),
				n("fetchaction", strings.ToUpper(a.GetFetchAction())), n("actionstatus", messages.StatusName(a.GetState())))
			if ms := a.GetStartedUnixMs(); ms != 0 {
				ch = append(ch, n("starttime", aci.FormatQueueTime(ms, now)),
					n("seconds", strconv.FormatInt(max(now.Unix()-ms/1000, 0), 10)))
			}
		}
		nodes = append(nodes, aci.Node{Name: "autn:thread", List: true, Children: ch})
	}
	return &result{data: []aci.Node{aci.Container("autn:threads", nodes...)}}, nil
}
