package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

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

// Advisory lock spaces (the first key; the second is hashtext of the id). A user's lock
// serialises every change to that user's roles; a role's lock is taken shared by a role event
// that may grant the role and exclusively by Role.Deleted, so a grant cannot slip past a
// concurrent deletion of its role. Role locks are always taken before user locks, and a
// transaction holds at most one exclusive role lock, so the two cannot deadlock.
const (
	lockSpace     = 727100
	roleLockSpace = 727101
)

// Tombstone kinds in logto_tombstones.
const (
	kindUser = "user"
	kindRole = "role"
)

// writer applies one webhook in a transaction.
type writer struct {
	h      *Handler
	tx     pgx.Tx
	ev     *hookEvent
	hash   string
	log    *slog.Logger
	events int
	// ignored counts the (user, role) changes this webhook carried that lost against newer
	// state: a tombstone, a newer complete role set or a newer change of the same row.
	ignored int
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
	if _, err := w.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockSpace, userID); err != nil {
		return fmt.Errorf("lock user %s: %w", userID, err)
	}
	return nil
}

// lockRolesShared takes the shared lock of every role in ids, in a fixed order.
func (w *writer) lockRolesShared(ctx context.Context, ids []string) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if _, err := w.tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1, hashtext($2))`, roleLockSpace, id); err != nil {
			return fmt.Errorf("lock role %s: %w", id, err)
		}
	}
	return nil
}

// bury records the deletion of (kind, id) at the event's createdAt. It reports whether this is
// the first deletion on record; a repeated one keeps the earliest deleted_at and extends the
// retention from now.
func (w *writer) bury(ctx context.Context, kind, id string) (bool, error) {
	tag, err := w.tx.Exec(ctx, `INSERT INTO logto_tombstones (kind, id, deleted_at, recorded_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, id) DO NOTHING`, kind, id, w.ev.CreatedAt, w.h.now().UTC())
	if err != nil {
		return false, fmt.Errorf("tombstone %s %s: %w", kind, id, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	if _, err := w.tx.Exec(ctx, `UPDATE logto_tombstones
		SET deleted_at = least(deleted_at, $3), recorded_at = greatest(recorded_at, $4)
		WHERE kind = $1 AND id = $2`, kind, id, w.ev.CreatedAt, w.h.now().UTC()); err != nil {
		return false, fmt.Errorf("tombstone %s %s: %w", kind, id, err)
	}
	return false, nil
}

// tombstones returns the deletion times of the ids of kind that are deleted.
func (w *writer) tombstones(ctx context.Context, kind string, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := w.tx.Query(ctx, `SELECT id, deleted_at FROM logto_tombstones WHERE kind = $1 AND id = ANY($2)`, kind, ids)
	if err != nil {
		return nil, fmt.Errorf("read %s tombstones: %w", kind, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("read %s tombstones: %w", kind, err)
		}
		out[id] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s tombstones: %w", kind, err)
	}
	return out, nil
}

// logDeleted logs a change that a deletion overrides. A change stamped at or before the
// deletion is an expected late delivery; one stamped after it cannot come from Logto's own
// ordering (a deleted user or role has no assignments left) and points to clock skew between
// Logto instances, so it is a warning. Either way it changes nothing.
func (w *writer) logDeleted(kind, id string, deletedAt time.Time) {
	w.ignored++
	attrs := []any{slog.String("kind", kind), slog.String("id", id),
		slog.Time("deleted_at", deletedAt), slog.Time("event_created_at", w.ev.CreatedAt)}
	if w.ev.CreatedAt.After(deletedAt) {
		w.log.Warn("logto webhook: role change stamped after the deletion of its "+kind+"; ignored", attrs...)
		return
	}
	w.log.Info("logto webhook: late role change for a deleted "+kind+"; ignored", attrs...)
}

func (w *writer) userDeleted(ctx context.Context) error {
	if err := w.lockUser(ctx, w.ev.UserID); err != nil {
		return err
	}
	first, err := w.bury(ctx, kindUser, w.ev.UserID)
	if err != nil {
		return err
	}
	// The user is gone for good: so are their platform roles, whatever the order of delivery.
	if _, err := w.tx.Exec(ctx, `UPDATE developer_roles SET active = false, changed_at = greatest(changed_at, $2), updated_at = now()
		WHERE user_id = $1 AND active`, w.ev.UserID, w.ev.CreatedAt); err != nil {
		return fmt.Errorf("deactivate roles: %w", err)
	}
	if !first {
		// Announced when the first deletion was stored, in that transaction.
		w.log.Info("logto webhook: user already deleted", slog.String("user_id", w.ev.UserID))
		return nil
	}
	return w.emit(ctx, events.TypeUserDeleted, w.ev.UserID,
		events.UserDeleted{UserID: w.ev.UserID, DeletedAt: w.ev.CreatedAt})
}

// roleChange sets one (user, role) row. name is "" when the role id is not known (a removal
// that carries only the id); such a row is stored with a NULL name, for its time only.
type roleChange struct {
	id, name string
	active   bool
}

func (w *writer) userRolesUpdated(ctx context.Context) error {
	ev := w.ev
	full := !ev.HasAdded && !ev.HasRemoved // roles is the complete set (PUT /users/:userId/roles)
	grants := ev.Added
	if full {
		grants = ev.RoleIDs
	}
	if err := w.lockRolesShared(ctx, grants); err != nil {
		return err
	}
	if err := w.lockUser(ctx, ev.UserID); err != nil {
		return err
	}
	if dead, err := w.tombstones(ctx, kindUser, []string{ev.UserID}); err != nil {
		return err
	} else if at, ok := dead[ev.UserID]; ok {
		w.logDeleted(kindUser, ev.UserID, at)
		return nil
	}
	deadRoles, err := w.tombstones(ctx, kindRole, grants)
	if err != nil {
		return err
	}
	setAt, err := w.roleSetAt(ctx, ev.UserID)
	if err != nil {
		return err
	}
	before, err := w.activeRoles(ctx, ev.UserID)
	if err != nil {
		return err
	}
	var changes []roleChange
	grant := func(id, name string) {
		if at, ok := deadRoles[id]; ok {
			w.logDeleted(kindRole, id, at)
			return
		}
		changes = append(changes, roleChange{id: id, name: name, active: true})
	}
	if !full {
		for _, id := range ev.Added {
			if name, err := w.roleName(ctx, id); err != nil {
				return err
			} else if w.h.platform[name] {
				grant(id, name)
			}
		}
		for _, id := range ev.Removed {
			name, err := w.roleName(ctx, id)
			if err != nil {
				return err
			}
			// An unknown id may be a platform role whose assignment has not arrived yet:
			// keep the removal's time so that the older assignment loses when it comes.
			if _, held := before[id]; held || name == "" || w.h.platform[name] {
				changes = append(changes, roleChange{id: id, name: name, active: false})
			}
		}
	} else {
		for _, id := range ev.RoleIDs {
			if name := ev.RoleNames[id]; w.h.platform[name] {
				grant(id, name)
			}
		}
		for id, name := range before {
			if _, kept := ev.RoleNames[id]; !kept {
				changes = append(changes, roleChange{id: id, name: name, active: false})
			}
		}
	}
	for _, c := range changes {
		if c.active && !setAt.IsZero() && !ev.CreatedAt.After(setAt) {
			// A complete set at least as recent did not hold this role (or held it, and then
			// its own row is at least as recent): this older assignment changes nothing.
			w.ignored++
			continue
		}
		applied, err := w.setRole(ctx, ev.UserID, c)
		if err != nil {
			return err
		}
		if !applied {
			w.ignored++
		}
	}
	if full {
		if _, err := w.tx.Exec(ctx, `INSERT INTO developer_role_sets (user_id, set_at) VALUES ($1, $2)
			ON CONFLICT (user_id) DO UPDATE SET set_at = greatest(developer_role_sets.set_at, EXCLUDED.set_at)`,
			ev.UserID, ev.CreatedAt); err != nil {
			return fmt.Errorf("record role set of %s: %w", ev.UserID, err)
		}
	}
	return w.announce(ctx, ev.UserID, before)
}

// roleSetAt returns the time of the user's newest complete role set, zero when none.
func (w *writer) roleSetAt(ctx context.Context, userID string) (time.Time, error) {
	var at time.Time
	err := w.tx.QueryRow(ctx, `SELECT set_at FROM developer_role_sets WHERE user_id = $1`, userID).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read role set of %s: %w", userID, err)
	}
	return at, nil
}

func (w *writer) roleDeleted(ctx context.Context) error {
	role := w.ev.RoleID
	if _, err := w.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, roleLockSpace, role); err != nil {
		return fmt.Errorf("lock role %s: %w", role, err)
	}
	if _, err := w.bury(ctx, kindRole, role); err != nil {
		return err
	}
	// No grant of this role can commit while the lock is held, and none after: they see the
	// tombstone. So the users holding it now are all there will ever be.
	rows, err := w.tx.Query(ctx, `SELECT user_id FROM developer_roles WHERE role_id = $1 AND active ORDER BY user_id`, role)
	if err != nil {
		return fmt.Errorf("users of role %s: %w", role, err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("users of role %s: %w", role, err)
	}
	for _, u := range users {
		if err := w.lockUser(ctx, u); err != nil {
			return err
		}
		before, err := w.activeRoles(ctx, u)
		if err != nil {
			return err
		}
		// Terminal: even a row stamped after the deletion (clock skew) loses the role.
		if _, err := w.tx.Exec(ctx, `UPDATE developer_roles SET active = false, changed_at = greatest(changed_at, $3), updated_at = now()
			WHERE user_id = $1 AND role_id = $2 AND active`, u, role, w.ev.CreatedAt); err != nil {
			return fmt.Errorf("deactivate role %s of %s: %w", role, u, err)
		}
		if err := w.announce(ctx, u, before); err != nil {
			return err
		}
	}
	return nil
}

// setRole upserts one row unless newer state already set it, and reports whether it did. The
// row's changed_at is the newest createdAt seen for the pair. A removal applies at an equal
// time, an assignment needs a strictly newer one: on a tie the removal wins, whatever the
// order of arrival.
func (w *writer) setRole(ctx context.Context, userID string, c roleChange) (bool, error) {
	var name *string
	if c.name != "" {
		name = &c.name
	}
	q := `INSERT INTO developer_roles (user_id, role_id, role_name, active, changed_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, role_id) DO UPDATE
		SET role_name = coalesce(EXCLUDED.role_name, developer_roles.role_name), active = EXCLUDED.active,
			changed_at = EXCLUDED.changed_at, updated_at = now()
		WHERE developer_roles.changed_at < EXCLUDED.changed_at
			OR (developer_roles.changed_at = EXCLUDED.changed_at AND NOT EXCLUDED.active)`
	tag, err := w.tx.Exec(ctx, q, userID, c.id, name, c.active, w.ev.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("set role %s of %s: %w", c.id, userID, err)
	}
	return tag.RowsAffected() == 1, nil
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
	err := w.tx.QueryRow(ctx, `SELECT role_name FROM developer_roles WHERE role_id = $1 AND role_name IS NOT NULL
		ORDER BY changed_at DESC LIMIT 1`, id).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("name of role %s: %w", id, err)
	}
	return name, nil
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
