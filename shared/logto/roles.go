package logto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/myscrollr/connect/shared/clip"
)

// RoleTypeMachineToMachine is the type of a role given to machine-to-machine applications
// (Logto's RoleType.MachineToMachine); roles of type "User" are for users.
const RoleTypeMachineToMachine = "MachineToMachine"

// Resource is an API resource (an audience) of the tenant.
type Resource struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Indicator string `json:"indicator"` // the resource indicator: the tokens' aud
}

// Scope is a permission of an API resource. Roles and consent take its ID, not its name.
type Scope struct {
	ID          string `json:"id"`
	ResourceID  string `json:"resourceId"`
	Name        string `json:"name"` // e.g. "data:write"
	Description string `json:"description,omitempty"`
}

// Role is a role of the tenant.
type Role struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Type        string `json:"type"` // "User" or RoleTypeMachineToMachine
}

// NewRole describes a machine-to-machine role.
type NewRole struct {
	Name        string   // unique within the tenant, at most 128 characters
	Description string   // at most 128 characters; Logto requires one
	ScopeIDs    []string // Scope.ID of each permission the role carries
}

// M2M is a machine-to-machine application together with the role that carries its scopes:
// what CreateM2M makes and DeleteM2M removes.
type M2M struct {
	AppID  string // the client_id of the client credentials grant
	Secret string // its client secret; shown once, store it sealed
	RoleID string
}

// NewM2M describes the machine-to-machine application CreateM2M makes.
type NewM2M struct {
	Name        string   // the application's name
	Description string   // optional
	Resource    string   // the API resource indicator the scopes belong to (LOGTO_API_RESOURCE)
	Scopes      []string // scope names of that resource, e.g. "data:write"; none: a role without scopes
}

// Resources lists the tenant's API resources.
func (c *Client) Resources(ctx context.Context) ([]Resource, error) {
	var out []Resource
	err := c.do(ctx, http.MethodGet, "/api/resources", nil, &out)
	return out, err
}

// ResourceScopes lists the scopes of the API resource with the given id (Resource.ID, not
// its indicator); ErrNotFound if there is no such resource.
func (c *Client) ResourceScopes(ctx context.Context, resourceID string) ([]Scope, error) {
	if resourceID == "" {
		return nil, errors.New("logto: ResourceScopes: resource id is required")
	}
	var out []Scope
	err := c.do(ctx, http.MethodGet, "/api/resources/"+url.PathEscape(resourceID)+"/scopes", nil, &out)
	return out, err
}

// ScopeIDs returns the ids of the named scopes of the API resource whose indicator is given,
// in the order of names: what roles (and consent scopes) take. A resource or a scope that
// does not exist is an error naming it.
func (c *Client) ScopeIDs(ctx context.Context, indicator string, names ...string) ([]string, error) {
	resources, err := c.Resources(ctx)
	if err != nil {
		return nil, err
	}
	var res *Resource
	for i := range resources {
		if resources[i].Indicator == indicator {
			res = &resources[i]
		}
	}
	if res == nil {
		return nil, fmt.Errorf("logto: ScopeIDs: no API resource has the indicator %q", indicator)
	}
	scopes, err := c.ResourceScopes(ctx, res.ID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(names))
	for _, n := range names {
		id := ""
		for _, s := range scopes {
			if s.Name == n {
				id = s.ID
			}
		}
		if id == "" {
			return nil, fmt.Errorf("logto: ScopeIDs: the API resource %q has no scope %q", indicator, n)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// CreateM2MApplication creates a machine-to-machine application (first party, client
// credentials) and returns it with its id and secret. It can obtain no scope until a role is
// assigned to it (AssignRole).
func (c *Client) CreateM2MApplication(ctx context.Context, name, description string) (*Application, error) {
	if name == "" {
		return nil, errors.New("logto: CreateM2MApplication: name is required")
	}
	in := applicationBody{
		Application:        Application{Name: name, Description: description, Type: "MachineToMachine"},
		OIDCClientMetadata: oidcClientMetadata{RedirectURIs: []string{}, PostLogoutRedirectURIs: []string{}},
	}
	var out applicationBody
	if err := c.do(ctx, http.MethodPost, "/api/applications", in, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, errors.New("logto: CreateM2MApplication: response without id")
	}
	a := out.Application
	if a.Secret == "" {
		secrets, err := c.Secrets(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		if len(secrets) > 0 {
			a.Secret = secrets[0].Value
		}
	}
	return &a, nil
}

// CreateRole creates a machine-to-machine role carrying the given scopes.
func (c *Client) CreateRole(ctx context.Context, r NewRole) (*Role, error) {
	switch {
	case r.Name == "" || len(r.Name) > 128:
		return nil, errors.New("logto: CreateRole: name is required, at most 128 characters")
	case r.Description == "" || len(r.Description) > 128:
		return nil, errors.New("logto: CreateRole: description is required, at most 128 characters")
	}
	in := map[string]any{"name": r.Name, "description": r.Description, "type": RoleTypeMachineToMachine}
	if len(r.ScopeIDs) > 0 {
		in["scopeIds"] = r.ScopeIDs
	}
	var out Role
	if err := c.do(ctx, http.MethodPost, "/api/roles", in, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, errors.New("logto: CreateRole: response without id")
	}
	return &out, nil
}

// GetRole returns the role, ErrNotFound if it does not exist.
func (c *Client) GetRole(ctx context.Context, id string) (*Role, error) {
	var out Role
	if err := c.do(ctx, http.MethodGet, "/api/roles/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AssignRole assigns the machine-to-machine role to the applications. Logto refuses (422) an
// application that already has it, and one that is not machine-to-machine.
func (c *Client) AssignRole(ctx context.Context, roleID string, appIDs ...string) error {
	if roleID == "" || len(appIDs) == 0 {
		return errors.New("logto: AssignRole: a role id and at least one application id are required")
	}
	return c.do(ctx, http.MethodPost, "/api/roles/"+url.PathEscape(roleID)+"/applications",
		map[string]any{"applicationIds": appIDs}, nil)
}

// RoleApplications lists the ids of the applications that have the role (up to 100).
func (c *Client) RoleApplications(ctx context.Context, roleID string) ([]string, error) {
	var out []Application
	if err := c.do(ctx, http.MethodGet, "/api/roles/"+url.PathEscape(roleID)+"/applications?page=1&page_size=100", nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out))
	for _, a := range out {
		ids = append(ids, a.ID)
	}
	return ids, nil
}

// DeleteRole deletes the role; deleting one that is already gone succeeds.
func (c *Client) DeleteRole(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodDelete, "/api/roles/"+url.PathEscape(id), nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// CreateM2M makes the credentials of a machine-to-machine client (an integration client): an
// application, a role of its own carrying the named scopes of the resource (none when
// m.Scopes is empty), and the role assigned to the application. Tokens of its client
// credentials grant for m.Resource then carry exactly those scopes (an empty scope without
// any). The role is named after the application's id, so it is unique and a retry after a
// failure never collides with a leftover. If a step fails, what was made is deleted (best
// effort) and the first error returned.
func (c *Client) CreateM2M(ctx context.Context, m NewM2M) (*M2M, error) {
	if m.Resource == "" {
		return nil, errors.New("logto: CreateM2M: a resource is required")
	}
	var scopeIDs []string
	if len(m.Scopes) > 0 {
		var err error
		if scopeIDs, err = c.ScopeIDs(ctx, m.Resource, m.Scopes...); err != nil {
			return nil, err
		}
	}
	app, err := c.CreateM2MApplication(ctx, m.Name, m.Description)
	if err != nil {
		return nil, err
	}
	out := &M2M{AppID: app.ID, Secret: app.Secret}
	undo := func(err error) (*M2M, error) {
		if derr := c.DeleteM2M(context.WithoutCancel(ctx), *out); derr != nil {
			c.log.Warn("logto: CreateM2M: could not delete what it made", "app_id", out.AppID, "role_id", out.RoleID, "error", derr)
		}
		return nil, err
	}
	role, err := c.CreateRole(ctx, NewRole{
		Name:        "m2m " + app.ID,
		Description: clip.String(roleDescription(m), 128),
		ScopeIDs:    scopeIDs,
	})
	if err != nil {
		return undo(err)
	}
	out.RoleID = role.ID
	if err := c.AssignRole(ctx, role.ID, app.ID); err != nil {
		return undo(err)
	}
	return out, nil
}

// roleDescription is the description of the role CreateM2M makes (Logto requires one).
func roleDescription(m NewM2M) string {
	if len(m.Scopes) == 0 {
		return "No scopes yet: " + strings.TrimSpace(m.Name)
	}
	return "Scopes of " + strings.TrimSpace(m.Name) + ": " + strings.Join(m.Scopes, " ")
}

// DeleteM2M deletes the role and the application CreateM2M made (either id may be empty);
// what is already gone counts as deleted.
func (c *Client) DeleteM2M(ctx context.Context, m M2M) error {
	var errs []error
	if m.RoleID != "" {
		errs = append(errs, c.DeleteRole(ctx, m.RoleID))
	}
	if m.AppID != "" {
		errs = append(errs, c.DeleteApplication(ctx, m.AppID))
	}
	return errors.Join(errs...)
}
