package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
)

// op is one kind of Logto delivery about one user u and one platform role dev ("developer").
type op int

const (
	opAdd     op = iota // User.Roles.Updated, POST /users/u/roles: roles [dev], addedRoleIds [dev]
	opRemove            // User.Roles.Updated, DELETE /users/u/roles/dev: removedRoleIds [dev] only
	opSet               // User.Roles.Updated, PUT /users/u/roles: the complete set is [admin]
	opUserDel           // User.Deleted u
	opRoleDel           // Role.Deleted dev
)

func (o op) String() string {
	return [...]string{"add", "remove", "set-admin-only", "user-deleted", "role-deleted"}[o]
}

// delivery is one webhook: what it does and its createdAt, in seconds after testNow.
type delivery struct {
	op op
	at int
}

func (d delivery) String() string { return fmt.Sprintf("%s@%d", d.op, d.at) }

func (d delivery) time() time.Time { return testNow.Add(time.Duration(d.at) * time.Second) }

// subject holds the ids of one permutation, so permutations share a database but no rows.
type subject struct{ user, dev, admin, hook string }

func (s subject) payload(d delivery) map[string]any {
	var p map[string]any
	switch d.op {
	case opAdd:
		p = rolesUpdated(s.user, d.time(), map[string]any{"roles": []any{role(s.dev, "developer")}, "addedRoleIds": []string{s.dev}})
	case opRemove:
		p = rolesUpdated(s.user, d.time(), map[string]any{"removedRoleIds": []string{s.dev}})
	case opSet:
		p = rolesUpdated(s.user, d.time(), map[string]any{"roles": []any{role(s.admin, "admin")}})
	case opUserDel:
		p = logtoPayload("User.Deleted", d.time(), map[string]any{"params": map[string]any{"userId": s.user},
			"data": map[string]any{"id": s.user, "username": s.user}})
	case opRoleDel:
		p = logtoPayload("Role.Deleted", d.time(), map[string]any{"params": map[string]any{"id": s.dev}, "matchedRoute": "/roles/:id"})
	}
	p["hookId"] = s.hook
	return p
}

// baseline grants admin at testNow, before every delivery of a scenario.
func (s subject) baseline() map[string]any {
	p := rolesUpdated(s.user, testNow, map[string]any{"roles": []any{role(s.admin, "admin")}, "addedRoleIds": []string{s.admin}})
	p["hookId"] = s.hook
	return p
}

// want is the state the ordering rules imply for a set of deliveries, whatever their order:
// a deletion is terminal; otherwise the newest createdAt wins, a removal winning a tie.
type want struct {
	dev, admin         bool
	userDead, roleDead bool
	userDeletedAt      time.Time
	roleDeletedAt      time.Time
}

func model(delivered []delivery) want {
	var w want
	newest, devAtNewest := -1, false
	for _, d := range delivered {
		switch d.op {
		case opUserDel:
			w.userDead, w.userDeletedAt = true, d.time()
		case opRoleDel:
			w.roleDead, w.roleDeletedAt = true, d.time()
		default:
			held := d.op == opAdd // a complete set without dev removes dev
			switch {
			case d.at > newest:
				newest, devAtNewest = d.at, held
			case d.at == newest:
				devAtNewest = devAtNewest && held
			}
		}
	}
	w.admin = !w.userDead
	w.dev = !w.userDead && !w.roleDead && devAtNewest
	return w
}

type roleRow struct {
	Name      *string
	Active    bool
	ChangedAt time.Time
	UpdatedAt time.Time
}

// snapshot is everything a delivery about s may write.
type snapshot struct {
	Roles      map[string]roleRow
	RoleSetAt  *time.Time
	View       []string
	Outbox     []outboxRow
	Processed  int
	Tombstones map[string][2]time.Time // kind/id -> deleted_at, recorded_at
}

func (b bundle) snapshot(t testing.TB, s subject) snapshot {
	t.Helper()
	ctx := context.Background()
	snap := snapshot{Roles: map[string]roleRow{}, Tombstones: map[string][2]time.Time{}}
	rows, err := b.pool.Query(ctx, `SELECT role_id, role_name, active, changed_at, updated_at FROM developer_roles WHERE user_id = $1`, s.user)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var r roleRow
		if err := rows.Scan(&id, &r.Name, &r.Active, &r.ChangedAt, &r.UpdatedAt); err != nil {
			t.Fatal(err)
		}
		snap.Roles[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	err = b.pool.QueryRow(ctx, `SELECT (SELECT set_at FROM developer_role_sets WHERE user_id = $1)`, s.user).Scan(&snap.RoleSetAt)
	if err != nil {
		t.Fatal(err)
	}
	snap.View = b.developerRoles(t, s.user)
	for _, r := range b.outbox(t) {
		if r.AggregateID == s.user {
			snap.Outbox = append(snap.Outbox, r)
		}
	}
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM processed_events WHERE consumer = $1 AND source = $2`,
		consumer, "logto:hook/"+s.hook).Scan(&snap.Processed); err != nil {
		t.Fatal(err)
	}
	rows, err = b.pool.Query(ctx, `SELECT kind, id, deleted_at, recorded_at FROM logto_tombstones
		WHERE (kind = 'user' AND id = $1) OR (kind = 'role' AND id = ANY($2))`, s.user, []string{s.dev, s.admin})
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var kind, id string
		var del, rec time.Time
		if err := rows.Scan(&kind, &id, &del, &rec); err != nil {
			t.Fatal(err)
		}
		snap.Tombstones[kind+"/"+id] = [2]time.Time{del, rec}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return snap
}

// check asserts that snap is the state model(delivered) implies, and that the outbox tells
// the same story: every role event a real change, replaying them gives the current roles.
func check(t *testing.T, s subject, delivered []delivery, snap snapshot) {
	t.Helper()
	w := model(delivered)
	if got := snap.Roles[s.dev].Active; got != w.dev {
		t.Errorf("developer active = %v, want %v (row %+v)", got, w.dev, snap.Roles[s.dev])
	}
	if got := snap.Roles[s.admin].Active; got != w.admin {
		t.Errorf("admin active = %v, want %v", got, w.admin)
	}
	var view []string
	if w.admin {
		view = append(view, "admin")
	}
	if w.dev {
		view = append(view, "developer")
	}
	if !slices.Equal(snap.View, view) && !(len(snap.View) == 0 && len(view) == 0) {
		t.Errorf("developers view %v, want %v", snap.View, view)
	}

	var roles []string
	userDeleted := 0
	for i, r := range snap.Outbox {
		switch r.Type {
		case events.TypeDeveloperRoleChanged:
			var d events.DeveloperRoleChanged
			if err := json.Unmarshal(r.Payload, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Added)+len(d.Removed) == 0 {
				t.Errorf("outbox %d: role event without a change: %+v", i, d)
			}
			next := slices.DeleteFunc(slices.Concat(roles, d.Added), func(n string) bool { return slices.Contains(d.Removed, n) })
			slices.Sort(next)
			if !slices.Equal(next, d.Roles) {
				t.Errorf("outbox %d: roles %v do not follow from %v + %v - %v", i, d.Roles, roles, d.Added, d.Removed)
			}
			roles = d.Roles
		case events.TypeUserDeleted:
			userDeleted++
			var d events.UserDeleted
			if err := json.Unmarshal(r.Payload, &d); err != nil {
				t.Fatal(err)
			}
			if d.UserID != s.user || !d.DeletedAt.Equal(w.userDeletedAt) {
				t.Errorf("user.deleted %+v, want deleted at %s", d, w.userDeletedAt)
			}
		default:
			t.Errorf("outbox %d: unexpected type %s", i, r.Type)
		}
	}
	if w.userDead {
		if userDeleted != 1 {
			t.Errorf("%d user.deleted events, want 1", userDeleted)
		}
	} else if userDeleted != 0 || !slices.Equal(roles, view) && !(len(roles) == 0 && len(view) == 0) {
		t.Errorf("outbox says roles %v (%d user.deleted), state says %v", roles, userDeleted, view)
	}

	distinct := map[delivery]bool{}
	for _, d := range delivered {
		distinct[d] = true
	}
	if snap.Processed != 1+len(distinct) { // + the baseline
		t.Errorf("processed_events: %d, want %d", snap.Processed, 1+len(distinct))
	}
	tomb := func(key string, dead bool, at time.Time) {
		got, ok := snap.Tombstones[key]
		if ok != dead || ok && !got[0].Equal(at) {
			t.Errorf("tombstone %s = %v (present %v), want present %v at %s", key, got, ok, dead, at)
		}
	}
	tomb("user/"+s.user, w.userDead, w.userDeletedAt)
	tomb("role/"+s.dev, w.roleDead, w.roleDeletedAt)
	if _, ok := snap.Tombstones["role/"+s.admin]; ok {
		t.Error("admin role has a tombstone")
	}
}

// permutations returns every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// Every order of delivery of a scenario's webhooks ends, and passes through, the state the
// ordering rules give for the set delivered so far; delivering everything again, newest
// first, changes nothing at all.
func TestDeliveryOrderDoesNotMatter(t *testing.T) {
	b := setupWebhook(t)
	scenarios := [][]delivery{
		{{opAdd, 1}, {opRemove, 2}, {opUserDel, 3}},
		{{opAdd, 3}, {opRemove, 1}, {opUserDel, 2}}, // an add stamped after the deletion
		{{opAdd, 1}, {opRemove, 2}, {opRoleDel, 3}},
		{{opRemove, 1}, {opAdd, 3}, {opRoleDel, 2}}, // an add stamped after the role's deletion
		{{opAdd, 1}, {opRemove, 2}, {opAdd, 3}},
		{{opRemove, 1}, {opAdd, 2}, {opRemove, 3}},
		{{opAdd, 1}, {opUserDel, 2}, {opRoleDel, 3}},
		{{opAdd, 1}, {opSet, 2}, {opAdd, 3}},
		{{opAdd, 3}, {opSet, 2}, {opRemove, 1}},
		{{opAdd, 1}, {opRemove, 2}, {opAdd, 3}, {opUserDel, 4}},
		{{opAdd, 2}, {opUserDel, 3}, {opRoleDel, 1}, {opRemove, 4}},
		{{opAdd, 1}, {opSet, 3}, {opAdd, 2}, {opRoleDel, 4}},
		// Ties: a removal (or a complete set without the role) beats an add of the same time.
		{{opAdd, 2}, {opRemove, 2}},
		{{opAdd, 2}, {opSet, 2}},
		{{opAdd, 2}, {opUserDel, 2}},
		{{opAdd, 2}, {opRoleDel, 2}},
		// The same delivery twice (Logto retrying), among others.
		{{opAdd, 1}, {opAdd, 1}, {opRemove, 2}},
		{{opRemove, 2}, {opUserDel, 3}, {opRemove, 2}, {opAdd, 1}},
	}
	n := 0
	for si, sc := range scenarios {
		for pi, perm := range permutations(len(sc)) {
			order := make([]delivery, len(perm))
			for i, j := range perm {
				order[i] = sc[j]
			}
			names := make([]string, len(order))
			for i, d := range order {
				names[i] = d.String()
			}
			n++
			t.Run(strings.Join(names, ","), func(t *testing.T) {
				id := fmt.Sprintf("%d_%d", si, pi)
				s := subject{user: "u_" + id, dev: "r_dev_" + id, admin: "r_admin_" + id, hook: "hook_" + id}
				deliver := func(p map[string]any, what string) {
					t.Helper()
					if status, prob := b.send(t, p); status != http.StatusNoContent {
						t.Fatalf("%s: status %d %+v", what, status, prob)
					}
				}
				deliver(s.baseline(), "baseline")
				check(t, s, nil, b.snapshot(t, s))
				for i, d := range order {
					deliver(s.payload(d), d.String())
					check(t, s, order[:i+1], b.snapshot(t, s))
					if t.Failed() {
						t.Fatalf("after %v", order[:i+1])
					}
				}
				final := b.snapshot(t, s)
				for _, d := range slices.Backward(order) {
					deliver(s.payload(d), "again "+d.String())
				}
				deliver(s.baseline(), "baseline again")
				if again := b.snapshot(t, s); !reflect.DeepEqual(again, final) {
					t.Fatalf("redelivery changed state:\nbefore %+v\nafter  %+v", final, again)
				}
			})
		}
	}
	if n < 100 {
		t.Fatalf("only %d permutations", n)
	}
}

func TestModel(t *testing.T) {
	for _, tc := range []struct {
		in  []delivery
		dev bool
	}{
		{nil, false},
		{[]delivery{{opAdd, 1}}, true},
		{[]delivery{{opAdd, 2}, {opRemove, 1}}, true},
		{[]delivery{{opAdd, 1}, {opRemove, 2}}, false},
		{[]delivery{{opAdd, 2}, {opRemove, 2}}, false},
		{[]delivery{{opAdd, 2}, {opSet, 1}}, true},
		{[]delivery{{opAdd, 3}, {opUserDel, 2}}, false},
		{[]delivery{{opAdd, 3}, {opRoleDel, 2}}, false},
	} {
		if got := model(tc.in).dev; got != tc.dev {
			t.Errorf("model(%v).dev = %v, want %v", tc.in, got, tc.dev)
		}
	}
}
