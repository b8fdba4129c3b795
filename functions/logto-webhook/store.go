package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/inbox"
	"github.com/myscrollr/connect/shared/outbox"
)

// consumer is this function's name in processed_events.
const consumer = "logto-webhook"

// eventIDSpace is the namespace of the name-based (SHA-1) UUIDs given to outbox events, derived
// from the delivery's body hash, so a redelivery would carry the same CloudEvent id.
var eventIDSpace = uuid.MustParse("3f1c9d52-6a0e-4c61-9a57-2b8f4f1e7c0d")

// lockSpace is the first key of the advisory locks that serialise changes to one user's roles.
const lockSpace = 727100

// writer applies one webhook in a transaction.
type writer struct {
	h      *Handler
	tx     pgx.Tx
	ev     *hookEvent
	hash   string
	events int
}

func (w *writer) claim(ctx context.Context) (bool, error) {
	return inbox.Claim(ctx, w.tx, consumer, "logto:hook/"+w.ev.HookID, w.hash)
}

// emit writes one outbox event about user.
func (w *writer) emit(ctx context.Context, typ, userID string, data any) error {
	ce, err := outbox.New(events.Source(consumer), typ, data)
	if err != nil {
		return err
	}
	ce.SetID(uuid.NewSHA1(eventIDSpace, []byte(w.hash+"/"+typ+"/"+userID)).String())
	ce.SetTime(w.h.now().UTC())
	ce.SetSubject(userID)
	if _, err := outbox.Write(ctx, w.tx, outbox.Event{AggregateType: "user", AggregateID: userID, CloudEvent: ce}); err != nil {
		return err
	}
	w.events++
	return nil
}

func (w *writer) lockUser(ctx context.Context, userID string) error {
	_, err := w.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockSpace, userID)
	return err
}

func (w *writer) userDeleted(ctx context.Context) error {
	if err := w.lockUser(ctx, w.ev.UserID); err != nil {
		return err
	}
	// The user is gone for good: so are their platform roles, whatever the order of delivery.
	if _, err := w.tx.Exec(ctx, `UPDATE developer_roles SET active = false, changed_at = greatest(changed_at, $2), updated_at = now()
		WHERE user_id = $1 AND active`, w.ev.UserID, w.ev.CreatedAt); err != nil {
		return fmt.Errorf("deactivate roles: %w", err)
	}
	return w.emit(ctx, events.TypeUserDeleted, w.ev.UserID,
		events.UserDeleted{UserID: w.ev.UserID, DeletedAt: w.ev.CreatedAt})
}

// roleChange sets one (user, role) row.
type roleChange struct {
	id, name string
	active   bool
}

func (w *writer) userRolesUpdated(ctx context.Context) error {
	ev := w.ev
	if err := w.lockUser(ctx, ev.UserID); err != nil {
		return err
	}
	before, err := w.activeRoles(ctx, ev.UserID)
	if err != nil {
		return err
	}
	var changes []roleChange
	if ev.HasAdded || ev.HasRemoved {
		for _, id := range ev.Added {
			if name, err := w.roleName(ctx, id); err != nil {
				return err
			} else if w.h.platform[name] {
				changes = append(changes, roleChange{id: id, name: name, active: true})
			}
		}
		for _, id := range ev.Removed {
			if name, err := w.roleName(ctx, id); err != nil {
				return err
			} else if _, held := before[id]; held || w.h.platform[name] {
				changes = append(changes, roleChange{id: id, name: name, active: false})
			}
		}
	} else {
		// roles is the complete set after the change (PUT /users/:userId/roles).
		for _, id := range ev.RoleIDs {
			if name := ev.RoleNames[id]; w.h.platform[name] {
				changes = append(changes, roleChange{id: id, name: name, active: true})
			}
		}
		for id, name := range before {
			if _, kept := ev.RoleNames[id]; !kept {
				changes = append(changes, roleChange{id: id, name: name, active: false})
			}
		}
	}
	for _, c := range changes {
		if err := w.setRole(ctx, ev.UserID, c); err != nil {
			return err
		}
	}
	return w.announce(ctx, ev.UserID, before)
}

func (w *writer) roleDeleted(ctx context.Context) error {
	rows, err := w.tx.Query(ctx, `SELECT user_id FROM developer_roles WHERE role_id = $1 AND active ORDER BY user_id`, w.ev.RoleID)
	if err != nil {
		return err
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := w.lockUser(ctx, u); err != nil {
			return err
		}
		before, err := w.activeRoles(ctx, u)
		if err != nil {
			return err
		}
		if _, err := w.tx.Exec(ctx, `UPDATE developer_roles SET active = false, changed_at = $3, updated_at = now()
			WHERE user_id = $1 AND role_id = $2 AND changed_at <= $3`, u, w.ev.RoleID, w.ev.CreatedAt); err != nil {
			return err
		}
		if err := w.announce(ctx, u, before); err != nil {
			return err
		}
	}
	return nil
}

// setRole upserts one row unless a more recent webhook already set it.
func (w *writer) setRole(ctx context.Context, userID string, c roleChange) error {
	_, err := w.tx.Exec(ctx, `INSERT INTO developer_roles (user_id, role_id, role_name, active, changed_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, role_id) DO UPDATE
		SET role_name = EXCLUDED.role_name, active = EXCLUDED.active, changed_at = EXCLUDED.changed_at, updated_at = now()
		WHERE developer_roles.changed_at <= EXCLUDED.changed_at`,
		userID, c.id, c.name, c.active, w.ev.CreatedAt)
	if err != nil {
		return fmt.Errorf("set role %s of %s: %w", c.id, userID, err)
	}
	return nil
}

// announce writes developer.role.changed when the user's platform roles differ from before.
func (w *writer) announce(ctx context.Context, userID string, before map[string]string) error {
	after, err := w.activeRoles(ctx, userID)
	if err != nil {
		return err
	}
	was, now := names(before), names(after)
	var added, removed []string
	for _, n := range now {
		if !slices.Contains(was, n) {
			added = append(added, n)
		}
	}
	for _, n := range was {
		if !slices.Contains(now, n) {
			removed = append(removed, n)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}
	return w.emit(ctx, events.TypeDeveloperRoleChanged, userID, events.DeveloperRoleChanged{
		UserID: userID, Roles: now, Added: added, Removed: removed, ChangedAt: w.ev.CreatedAt,
	})
}

// activeRoles returns the user's active platform roles, id -> name.
func (w *writer) activeRoles(ctx context.Context, userID string) (map[string]string, error) {
	rows, err := w.tx.Query(ctx, `SELECT role_id, role_name FROM developer_roles WHERE user_id = $1 AND active`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[id] = name
	}
	return out, rows.Err()
}

// roleName resolves a role id: from the payload's roles, else from a row of any user (a
// removal carries only ids). "" when unknown, which means it is not a platform role we track.
func (w *writer) roleName(ctx context.Context, id string) (string, error) {
	if n, ok := w.ev.RoleNames[id]; ok {
		return n, nil
	}
	var name string
	err := w.tx.QueryRow(ctx, `SELECT role_name FROM developer_roles WHERE role_id = $1 ORDER BY changed_at DESC LIMIT 1`, id).Scan(&name)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	return name, err
}

// names returns the distinct role names of m, sorted; never nil (the event lists roles: []).
func names(m map[string]string) []string {
	out := []string{}
	for _, n := range m {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
