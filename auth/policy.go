package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Role is one role section of [AuthorizationRoles].
type Role struct {
	Name string
	// Standard are the standard roles it grants (StandardRoles).
	Standard Standard
	// Actions and ServiceActions grant single actions of the ACI port and
	// of the service port, by name (any case).
	Actions        []string
	ServiceActions []string
	// Members: a connection from one of Clients, or with a certificate
	// identity in Identities, holds the role. At least one is set.
	Clients    *Clients
	Identities *Identities
}

// Policy is a set of roles.
type Policy struct {
	roles []Role
	// configured is false for IDOL's default roles.
	configured bool
}

// Default is IDOL's default when there is no [AuthorizationRoles]: Admin
// and ServiceControl for localhost (127.0.0.0/8, ::1) only; Query and
// ServiceStatus for every client.
func Default() *Policy {
	local, _ := ParseClients("localhost")
	all, _ := ParseClients("*")
	return &Policy{roles: []Role{
		{Name: "Admin", Standard: Admin, Clients: local},
		{Name: "ServiceControl", Standard: ServiceControl, Clients: local},
		{Name: "Query", Standard: Query, Clients: all},
		{Name: "ServiceStatus", Standard: ServiceStatus, Clients: all},
	}}
}

// New checks roles and makes a policy of them. With roles configured, they
// replace IDOL's defaults entirely: a permission no role grants is granted
// to nobody.
func New(roles []Role) (*Policy, error) {
	seen := map[string]bool{}
	out := make([]Role, 0, len(roles))
	for _, r := range roles {
		key := strings.ToLower(r.Name)
		if seen[key] {
			return nil, fmt.Errorf("role %s is listed twice", r.Name)
		}
		seen[key] = true
		if r.Clients == nil && r.Identities == nil {
			return nil, fmt.Errorf("role %s has no members: give Clients or SSLIdentities", r.Name)
		}
		if r.Standard == None && len(r.Actions) == 0 && len(r.ServiceActions) == 0 {
			return nil, fmt.Errorf("role %s grants nothing: give StandardRoles, Actions or ServiceActions", r.Name)
		}
		for i, a := range r.Actions {
			name, ok := KnownAction(ACIPort, a)
			if !ok {
				return nil, fmt.Errorf("role %s: Actions: %q is not an action of the ACI port (expected one of %s)", r.Name, a, strings.Join(Actions(ACIPort), ", "))
			}
			r.Actions[i] = name
		}
		for i, a := range r.ServiceActions {
			name, ok := KnownAction(ServicePort, a)
			if !ok {
				return nil, fmt.Errorf("role %s: ServiceActions: %q is not an action of the service port (expected one of %s)", r.Name, a, strings.Join(Actions(ServicePort), ", "))
			}
			r.ServiceActions[i] = name
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("[AuthorizationRoles] lists no role")
	}
	if len(out) > maxRoles {
		return nil, fmt.Errorf("[AuthorizationRoles] lists %d roles; at most %d are supported", len(out), maxRoles)
	}
	return &Policy{roles: out, configured: true}, nil
}

// IdentityRoles returns the names of the roles that have members by
// certificate identity (SSLIdentities), in policy order.
func (p *Policy) IdentityRoles() []string {
	var out []string
	for _, r := range p.roles {
		if r.Identities != nil {
			out = append(out, r.Name)
		}
	}
	return out
}

// Configured reports whether the policy comes from [AuthorizationRoles]
// (false: IDOL's defaults).
func (p *Policy) Configured() bool { return p.configured }

// maxRoles bounds the roles of a policy (a grant is a bit set of them).
const maxRoles = 64

// Grant is what one principal holds: the union of the roles it matches.
// Computing it allocates nothing.
type Grant struct {
	Standard Standard
	roles    uint64 // bit i: the policy's role i
	p        *Policy
}

// Grant returns what principal holds.
func (p *Policy) Grant(pr Principal) Grant {
	g := Grant{p: p}
	id := pr.HasIdentity()
	for i := range p.roles {
		r := &p.roles[i]
		if !r.Clients.Match(pr.Addr) && !(id && r.Identities.Match(pr)) {
			continue
		}
		g.Standard |= r.Standard
		g.roles |= 1 << i
	}
	return g
}

// Roles returns the names of the roles the grant holds, in policy order.
func (g Grant) Roles() []string {
	var out []string
	for i := 0; g.p != nil && i < len(g.p.roles); i++ {
		if g.roles&(1<<i) != 0 {
			out = append(out, g.p.roles[i].Name)
		}
	}
	return out
}

// Allows reports whether the grant permits action (with QueueAction sub,
// for QueueInfo) on port: the standard role the action needs, or the action
// named in one of its roles' Actions (ServiceActions). Naming QueueInfo in
// Actions grants every QueueAction.
func (g Grant) Allows(port Port, action, sub string) bool {
	need := Need(port, action, sub)
	if need == None || g.Standard&need != 0 {
		return true
	}
	for i := 0; g.p != nil && i < len(g.p.roles); i++ {
		if g.roles&(1<<i) == 0 {
			continue
		}
		names := g.p.roles[i].Actions
		if port == ServicePort {
			names = g.p.roles[i].ServiceActions
		}
		for _, a := range names {
			if strings.EqualFold(a, action) {
				return true
			}
		}
	}
	return false
}

// Role returns the names of the grant's roles, for logs ("none" when it
// holds none).
func (g Grant) Role() string {
	if g.roles == 0 {
		return "none"
	}
	if g.p == nil {
		return ""
	}
	// Every submitted action records its client's roles: one role, the
	// usual case, is its name; more are joined in one allocation.
	var b strings.Builder
	for i := range g.p.roles {
		if g.roles&(1<<i) == 0 {
			continue
		}
		name := g.p.roles[i].Name
		if b.Len() == 0 {
			if g.roles>>(i+1) == 0 {
				return name
			}
			b.Grow(64)
		} else {
			b.WriteByte(',')
		}
		b.WriteString(name)
	}
	return b.String()
}
