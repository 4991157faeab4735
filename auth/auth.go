// Package auth decides who may do what: IDOL's authorization roles
// ([AuthorizationRoles]). A role grants standard roles (Admin, Query,
// ServiceControl, ServiceStatus) and single actions (Actions on the ACI
// port, ServiceActions on the service port) to its members: clients by
// address (Clients: IP addresses, wildcards, CIDR prefixes, localhost) and
// clients by the identity of their verified TLS certificate
// (SSLIdentities). A connection that matches one member of a role holds
// every permission of that role.
//
// The table of which standard role each action needs (Rules) is the one
// place that says it; docs/security.md prints it, and a test checks that
// every action the server answers is in it.
//
// The package is a pure library: it parses the members, holds the roles,
// and answers Allowed for a principal and an action. Policies are immutable
// and safe for concurrent use.
package auth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Standard is a set of IDOL standard roles.
type Standard uint8

// The standard roles. They do not overlap: Admin does not include Query.
const (
	Admin          Standard = 1 << iota // administrative ACI actions
	Query                               // non-administrative ACI actions
	ServiceControl                      // administrative service actions (Stop)
	ServiceStatus                       // status service actions
	// None marks an action that needs no role (ShowPermissions).
	None Standard = 0
	// All is StandardRoles=*.
	All = Admin | Query | ServiceControl | ServiceStatus
)

var standardNames = []struct {
	s    Standard
	name string
}{{Admin, "Admin"}, {Query, "Query"}, {ServiceControl, "ServiceControl"}, {ServiceStatus, "ServiceStatus"}}

// Names returns the standard roles of s, as IDOL spells them.
func (s Standard) Names() []string {
	var out []string
	for _, n := range standardNames {
		if s&n.s != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func (s Standard) String() string {
	if s == None {
		return "none"
	}
	return strings.Join(s.Names(), ",")
}

// ParseStandard reads a StandardRoles value: a comma-separated list of
// Admin, Query, ServiceControl, ServiceStatus (any case), or *. IDOL's
// Index role is refused: a connector has no index port.
func ParseStandard(v string) (Standard, error) {
	var s Standard
	for _, f := range splitCSV(v) {
		if f == "*" {
			s |= All
			continue
		}
		i := slices.IndexFunc(standardNames, func(n struct {
			s    Standard
			name string
		}) bool {
			return strings.EqualFold(n.name, f)
		})
		switch {
		case i >= 0:
			s |= standardNames[i].s
		case strings.EqualFold(f, "Index"):
			return 0, errors.New("Index is IDOL's role for index actions, and a connector has no index port (expected Admin, Query, ServiceControl, ServiceStatus or *)")
		default:
			return 0, fmt.Errorf("%q is not a standard role (expected Admin, Query, ServiceControl, ServiceStatus or *)", f)
		}
	}
	return s, nil
}

// Port is the port a request arrived on: the ACI port, or the service
// port. Actions and standard roles are per port.
type Port uint8

const (
	ACIPort Port = iota
	ServicePort
)

func (p Port) String() string {
	if p == ServicePort {
		return "service"
	}
	return "ACI"
}

// Rule says which standard role one action (and, for QueueInfo, one
// QueueAction) needs on one port.
type Rule struct {
	Port   Port
	Action string // as IDOL spells it: Fetch, QueueInfo, ...
	Sub    string // QueueAction for QueueInfo; "" for the action as a whole
	Role   Standard
	Why    string // one line for docs/security.md
}

// Rules is the role table: every action the server answers on each port,
// and the standard role it needs. An action the table does not list needs
// Admin (a new action is never open by accident). QueueInfo's QueueActions
// are listed one by one; a QueueAction the table does not list needs
// Admin.
var Rules = []Rule{
	{ACIPort, "Fetch", "", Admin, "every FetchAction: Insert reads local files, Collect writes local folders, Synchronize fetches web pages"},
	{ACIPort, "QueueInfo", "GetStatus", Query, "read-only status of actions"},
	{ACIPort, "QueueInfo", "QueueStatus", Query, "read-only counts of the queue"},
	{ACIPort, "QueueInfo", "Progress", Query, "read-only progress of an action"},
	{ACIPort, "QueueInfo", "GetActionParameters", Admin, "shows an action's parameters (secrets redacted, but configuration fragments and overrides)"},
	{ACIPort, "QueueInfo", "Cancel", Admin, "changes the queue"},
	{ACIPort, "QueueInfo", "Stop", Admin, "changes the queue"},
	{ACIPort, "QueueInfo", "Pause", Admin, "changes the queue"},
	{ACIPort, "QueueInfo", "Resume", Admin, "changes the queue"},
	{ACIPort, "QueueInfo", "ChangePriority", Admin, "changes the queue"},
	{ACIPort, "QueueInfo", "Duplicate", Admin, "queues a copy of an action"},
	{ACIPort, "QueueInfo", "CancelQueued", Admin, "cancels every queued action the filters select (an extension of ours)"},
	{ACIPort, "View", "", Admin, "fetches a live document: an outgoing request the client chooses"},
	{ACIPort, "GetStatus", "", Admin, "IDOL documents GetStatus as an Admin action"},
	{ACIPort, "GetRequestLog", "", Admin, "shows other clients' requests"},
	{ACIPort, "TaskList", "", Query, "task names and their last runs"},
	{ACIPort, "ThreadStatus", "", Query, "which action each worker thread runs"},
	{ACIPort, "GetVersion", "", Query, "version and uptime"},
	{ACIPort, "GetPid", "", Query, "the process id"},
	{ACIPort, "GetLicenseInfo", "", Query, "which actions are available"},
	{ACIPort, "Admin", "", Query, "the dashboard page; its buttons appear, and work, only for Admin"},
	{ACIPort, "ShowPermissions", "", None, "what the client itself may do"},
	{ServicePort, "GetStatus", "", ServiceStatus, "running or stopped, and the queue's counts"},
	{ServicePort, "GetStatusInfo", "", ServiceStatus, "process and port information"},
	{ServicePort, "Metrics", "", ServiceStatus, "GET /metrics: Prometheus metrics"},
	{ServicePort, "Admin", "", ServiceStatus, "the service port's page, linking the dashboard"},
	{ServicePort, "ShowPermissions", "", None, "what the client itself may do"},
	{ServicePort, "Stop", "", ServiceControl, "shuts the server down, as SIGTERM does"},
}

// Need returns the standard role that action (with QueueAction sub, for
// QueueInfo) needs on port: the table's, or Admin (ServiceControl on the
// service port) for anything the table does not list.
func Need(port Port, action, sub string) Standard {
	var whole *Rule
	rows := rulesByAction[port][action] // the usual case: the table's spelling
	if rows == nil {
		for a, r := range rulesByAction[port] {
			if len(a) == len(action) && strings.EqualFold(a, action) {
				rows = r
				break
			}
		}
	}
	sub = strings.TrimSpace(sub)
	for _, i := range rows {
		r := &Rules[i]
		if r.Sub == "" {
			whole = r
			continue
		}
		// In ASCII case only (equal lengths), as the QueueInfo handler
		// matches a QueueAction: QueueStatu\u017f is none of them.
		if len(r.Sub) == len(sub) && strings.EqualFold(r.Sub, sub) {
			return r.Role
		}
	}
	if whole != nil {
		return whole.Role
	}
	if port == ServicePort {
		return ServiceControl
	}
	return Admin
}

// rulesByAction indexes Rules by port and action.
var rulesByAction = func() [2]map[string][]int {
	var m [2]map[string][]int
	for i, r := range Rules {
		if m[r.Port] == nil {
			m[r.Port] = map[string][]int{}
		}
		m[r.Port][r.Action] = append(m[r.Port][r.Action], i)
	}
	return m
}()

// KnownAction returns the action's spelling in the table, and whether it is
// an action of port at all (Actions and ServiceActions may name only those).
func KnownAction(port Port, action string) (string, bool) {
	for _, r := range Rules {
		if r.Port == port && strings.EqualFold(r.Action, action) {
			return r.Action, true
		}
	}
	return "", false
}

// Actions returns the action names of port, in table order, each once.
func Actions(port Port) []string {
	var out []string
	for _, r := range Rules {
		if r.Port == port && !slices.Contains(out, r.Action) {
			out = append(out, r.Action)
		}
	}
	return out
}

// Principal is who sent a request: the client's address and, over TLS
// with a verified client certificate, the certificate's identities.
type Principal struct {
	Addr netip.Addr
	// DNS and Email are the certificate's subjectAltName DNS names and
	// email addresses; when it has no subjectAltName, DNS holds its
	// subject Common Name (IDOL's fallback).
	DNS   []string
	Email []string
}

// HasIdentity reports whether the principal presented a verified
// certificate with at least one identity.
func (p Principal) HasIdentity() bool { return len(p.DNS) > 0 || len(p.Email) > 0 }

func (p Principal) String() string {
	s := p.Addr.String()
	if !p.Addr.IsValid() {
		s = "unknown address"
	}
	for _, d := range p.DNS {
		s += " dns:" + d
	}
	for _, e := range p.Email {
		s += " email:" + e
	}
	return s
}

func splitCSV(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// FromCertificate returns the principal of a client at addr with the
// verified certificate cert (nil: none): its subjectAltName DNS names and
// email addresses, or, when it has no subjectAltName at all, its subject
// Common Name as a DNS name (IDOL's fallback). A subjectAltName that
// names only IP addresses or URIs gives no identity: the Common Name of
// such a certificate need not have been checked as a name.
func FromCertificate(addr netip.Addr, cert *x509.Certificate) Principal {
	p := Principal{Addr: addr.Unmap()}
	if cert == nil {
		return p
	}
	p.DNS, p.Email = cert.DNSNames, cert.EmailAddresses
	if len(p.DNS) == 0 && len(p.Email) == 0 && cert.Subject.CommonName != "" && !hasSubjectAltName(cert) {
		p.DNS = []string{cert.Subject.CommonName}
	}
	return p
}

// oidSubjectAltName is the subjectAltName extension (RFC 5280, 4.2.1.6).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

func hasSubjectAltName(cert *x509.Certificate) bool {
	return slices.ContainsFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidSubjectAltName) })
}
