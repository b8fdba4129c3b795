package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/myscrollr/connect/shared/httpx"
)

// Logto event names this function acts on.
const (
	eventUserDeleted      = "User.Deleted"
	eventUserRolesUpdated = "User.Roles.Updated"
	eventRoleDeleted      = "Role.Deleted"
)

// maxIDLen bounds Logto ids and role names (the database checks the same).
const maxIDLen = 128

// hookEvent is what this function needs of one Logto webhook payload.
type hookEvent struct {
	HookID    string
	Event     string
	CreatedAt time.Time

	UserID string // User.* events
	RoleID string // Role.Deleted

	// User.Roles.Updated.
	RoleNames  map[string]string // role id -> name, from "roles"
	RoleIDs    []string          // ids in "roles", in order
	HasRoles   bool
	Added      []string
	Removed    []string
	HasAdded   bool
	HasRemoved bool
}

// handled reports whether the event type is one this function acts on.
func (e *hookEvent) handled() bool {
	switch e.Event {
	case eventUserDeleted, eventUserRolesUpdated, eventRoleDeleted:
		return true
	}
	return false
}

type envelope struct {
	HookID    *string `json:"hookId"`
	Event     *string `json:"event"`
	CreatedAt *string `json:"createdAt"`
}

type entity struct {
	ID *string `json:"id"`
}

type params struct {
	UserID *string `json:"userId"`
	ID     *string `json:"id"`
}

type wireRole struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

type userRoles struct {
	Data    *entity     `json:"data"`
	Params  *params     `json:"params"`
	Roles   *[]wireRole `json:"roles"`
	Added   *[]string   `json:"addedRoleIds"`
	Removed *[]string   `json:"removedRoleIds"`
}

type entityEvent struct {
	Data   *entity `json:"data"`
	Params *params `json:"params"`
}

// parseEvent parses a Logto webhook body. Every error is a 400 *httpx.Problem naming the field.
// Members it does not need are ignored: Logto adds context (userAgent, ip, path, ...) freely.
func parseEvent(body []byte) (*hookEvent, error) {
	var env envelope
	if err := decode(body, &env); err != nil {
		return nil, err
	}
	ev := &hookEvent{}
	var err error
	if ev.HookID, err = requireID("hookId", env.HookID); err != nil {
		return nil, err
	}
	if env.Event == nil || *env.Event == "" {
		return nil, missing("event")
	}
	if len(*env.Event) > maxIDLen {
		return nil, invalid("event", fmt.Sprintf("longer than %d characters", maxIDLen))
	}
	ev.Event = *env.Event
	if env.CreatedAt == nil || *env.CreatedAt == "" {
		return nil, missing("createdAt")
	}
	if ev.CreatedAt, err = time.Parse(time.RFC3339Nano, *env.CreatedAt); err != nil {
		return nil, invalid("createdAt", "expected an RFC 3339 date-time")
	}
	ev.CreatedAt = ev.CreatedAt.UTC()

	switch ev.Event {
	case eventUserDeleted:
		var p entityEvent
		if err := decode(body, &p); err != nil {
			return nil, err
		}
		if ev.UserID, err = entityID(p.Data, p.Params, "userId"); err != nil {
			return nil, err
		}
	case eventRoleDeleted:
		var p entityEvent
		if err := decode(body, &p); err != nil {
			return nil, err
		}
		if ev.RoleID, err = entityID(p.Data, p.Params, "id"); err != nil {
			return nil, err
		}
	case eventUserRolesUpdated:
		var p userRoles
		if err := decode(body, &p); err != nil {
			return nil, err
		}
		if ev.UserID, err = entityID(p.Data, p.Params, "userId"); err != nil {
			return nil, err
		}
		if err := ev.setRoles(p); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

func (ev *hookEvent) setRoles(p userRoles) error {
	if p.Roles == nil && p.Added == nil && p.Removed == nil {
		return httpx.BadRequest(`field "roles": one of roles, addedRoleIds or removedRoleIds is required`,
			httpx.FieldError{Field: "roles", Reason: "one of roles, addedRoleIds or removedRoleIds is required"})
	}
	ev.RoleNames = map[string]string{}
	if p.Roles != nil {
		ev.HasRoles = true
		for i, r := range *p.Roles {
			id, err := requireID(fmt.Sprintf("roles[%d].id", i), r.ID)
			if err != nil {
				return err
			}
			name, err := requireID(fmt.Sprintf("roles[%d].name", i), r.Name)
			if err != nil {
				return err
			}
			ev.RoleNames[id] = name
			ev.RoleIDs = append(ev.RoleIDs, id)
		}
	}
	var err error
	if p.Added != nil {
		ev.HasAdded = true
		if ev.Added, err = idList("addedRoleIds", *p.Added); err != nil {
			return err
		}
	}
	if p.Removed != nil {
		ev.HasRemoved = true
		if ev.Removed, err = idList("removedRoleIds", *p.Removed); err != nil {
			return err
		}
	}
	return nil
}

// entityID takes the id from data.id, else from params.<param> (a DELETE route answers with no
// body, so Logto's data is empty there and the id is only in the route parameters).
func entityID(data *entity, p *params, param string) (string, error) {
	if data != nil && data.ID != nil {
		return requireID("data.id", data.ID)
	}
	if p != nil {
		v := p.ID
		if param == "userId" {
			v = p.UserID
		}
		if v != nil {
			return requireID("params."+param, v)
		}
	}
	return "", missing("data.id")
}

func idList(field string, ids []string) ([]string, error) {
	for i := range ids {
		if _, err := requireID(fmt.Sprintf("%s[%d]", field, i), &ids[i]); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func requireID(field string, v *string) (string, error) {
	if v == nil || *v == "" {
		return "", missing(field)
	}
	if len(*v) > maxIDLen {
		return "", invalid(field, fmt.Sprintf("longer than %d characters", maxIDLen))
	}
	return *v, nil
}

func missing(field string) error { return invalid(field, "required") }

func invalid(field, reason string) error {
	return httpx.BadRequest(fmt.Sprintf("field %q: %s", field, reason), httpx.FieldError{Field: field, Reason: reason})
}

// decode unmarshals one JSON object into dst, mapping errors to 400 problems naming the field.
func decode(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	err := dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			return httpx.BadRequest("request body has data after the JSON value")
		}
		return nil
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return httpx.BadRequest("request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return httpx.BadRequest("malformed JSON: unexpected end of input")
	case errors.As(err, &syntax):
		return httpx.BadRequest(fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.As(err, &typ):
		reason := "expected " + kind(typ.Type.String()) + ", got " + typ.Value
		if typ.Field == "" {
			return httpx.BadRequest("request body: "+reason+" (a JSON object is required)",
				httpx.FieldError{Field: "", Reason: reason})
		}
		field := typ.Field
		if len(field) > 200 {
			field = field[:200]
		}
		return invalid(field, reason)
	}
	return httpx.BadRequest("invalid JSON value")
}

func kind(goType string) string {
	switch {
	case strings.HasSuffix(goType, "string"):
		return "string"
	case strings.HasPrefix(goType, "[]") || strings.HasPrefix(goType, "*[]"):
		return "array"
	}
	return "object"
}
