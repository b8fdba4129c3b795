package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/outbox"
)

// This file is the revocation protocol of migration 00008 (install_revocations), shared with
// functions/install: every step that touches an install or its mark holds
// pg_advisory_xact_lock(hashtextextended(user_id || '/' || integration_id, 0)).
//
//	tx 1   lock; mark install_revocations.revoked_at (the database clock, after the lock)
//	Logto  revoke the user's grants to the integration's application (404: already gone)
//	tx 2   lock; delete the install (install_count - 1); install.revoked through the outbox
//
// The install side's consent callback, under the same lock, refuses to record an install
// started before the mark (and revokes the grant it just obtained), so an install racing a
// revocation ends either installed with a grant or with neither.

// integrationRef is the integration an install belongs to, as a revocation needs it.
type integrationRef struct {
	ID, Name   string
	LogtoAppID *string
}

// ErrLogto wraps a failure of the Logto Management API: nothing was deleted and the same
// revocation may be retried (HTTP: 503; events: redelivered).
var ErrLogto = errors.New("uninstall: Logto Management API failed")

// lockInstall takes the 00008 advisory lock of (userID, integrationID) for the rest of tx.
// integrationID must be the canonical text of the uuid (lower case, as integration_id::text).
func lockInstall(ctx context.Context, tx pgx.Tx, userID, integrationID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2::text, 0))`,
		userID, integrationID); err != nil {
		return fmt.Errorf("uninstall: lock install of %s: %w", integrationID, err)
	}
	return nil
}

// markRevoked records that (userID, integrationID) is being revoked now, by the database's
// clock read after the lock was granted (clock_timestamp, not the transaction's start), so an
// install whose state was created before this moment is refused by the consent callback. A mark
// never moves backwards.
func markRevoked(ctx context.Context, tx pgx.Tx, userID, integrationID string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO install_revocations (user_id, integration_id, revoked_at)
		VALUES ($1, $2, clock_timestamp())
		ON CONFLICT (user_id, integration_id) DO UPDATE
		SET revoked_at = greatest(install_revocations.revoked_at, excluded.revoked_at)`, userID, integrationID); err != nil {
		return fmt.Errorf("uninstall: mark revocation of %s: %w", integrationID, err)
	}
	return nil
}

// lockedInstall is the user's install of the integration, locked for update, or nil.
type lockedInstall struct {
	ID      string
	Sandbox bool
}

func findInstall(ctx context.Context, tx pgx.Tx, userID, integrationID string) (*lockedInstall, error) {
	var in lockedInstall
	err := tx.QueryRow(ctx, `SELECT id::text, sandbox FROM user_integrations
		WHERE user_id = $1 AND integration_id = $2 FOR UPDATE`, userID, integrationID).Scan(&in.ID, &in.Sandbox)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("uninstall: find install of %s: %w", integrationID, err)
	}
	return &in, nil
}

// revocation is one install to end: whose, of what, why, and how its tx 2 is made idempotent.
type revocation struct {
	UserID      string
	Integration integrationRef
	Reason      string // events.Revoke*
	// Claim, when set, claims the consumed event in tx 2 (shared/inbox); false means it was
	// already handled, and tx 2 does nothing.
	Claim func(ctx context.Context, tx pgx.Tx) (bool, error)
	// EventID names the install.revoked event of an install; nil: a new UUIDv7.
	EventID func(installID string) string
}

// revokeResult says what a revocation did.
type revokeResult struct {
	Revoked   bool   // an install was deleted and install.revoked written
	InstallID string // the install deleted
}

// revokeInstall runs the protocol for one (user, integration). With no install at tx 1 it
// neither marks nor calls Logto, and only claims the event, if any (an HTTP request with no
// install writes nothing at all). A Logto failure is ErrLogto, with the mark written and
// nothing deleted.
func (s *Service) revokeInstall(ctx context.Context, r revocation) (revokeResult, error) {
	var installed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockInstall(ctx, tx, r.UserID, r.Integration.ID); err != nil {
			return err
		}
		in, err := findInstall(ctx, tx, r.UserID, r.Integration.ID)
		if err != nil || in == nil {
			return err
		}
		installed = true
		return markRevoked(ctx, tx, r.UserID, r.Integration.ID)
	})
	if err != nil {
		return revokeResult{}, err
	}
	if !installed {
		// Nothing to revoke. An install recorded since tx 1 is not this revocation's: it was
		// neither marked nor had its grant revoked, so it stays, with its grant.
		if r.Claim == nil {
			return revokeResult{}, nil
		}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { _, err := r.Claim(ctx, tx); return err })
		return revokeResult{}, err
	}
	if r.Integration.LogtoAppID != nil {
		if _, err := s.logto.RevokeGrants(ctx, r.UserID, *r.Integration.LogtoAppID); err != nil && !errors.Is(err, logto.ErrNotFound) {
			return revokeResult{}, fmt.Errorf("%w: revoke grants of %s to %s: %w", ErrLogto, r.UserID, r.Integration.Name, err)
		}
	}
	var res revokeResult
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = revokeResult{}
		if err := lockInstall(ctx, tx, r.UserID, r.Integration.ID); err != nil {
			return err
		}
		if r.Claim != nil {
			claimed, err := r.Claim(ctx, tx)
			if err != nil || !claimed {
				return err
			}
		}
		in, err := findInstall(ctx, tx, r.UserID, r.Integration.ID)
		if err != nil || in == nil {
			return err // revoked meanwhile by another request or event: nothing more to announce
		}
		if err := s.removeAndAnnounce(ctx, tx, install{ID: in.ID, IntegrationID: r.Integration.ID, Name: r.Integration.Name,
			LogtoAppID: r.Integration.LogtoAppID, Sandbox: in.Sandbox}, r.UserID, r.Reason, r.EventID); err != nil {
			return err
		}
		res = revokeResult{Revoked: true, InstallID: in.ID}
		return nil
	})
	if err != nil {
		return revokeResult{}, err
	}
	return res, nil
}

// removeAndAnnounce deletes the install, decrements its integration's install_count and writes
// install.revoked through the outbox, all in tx.
func (s *Service) removeAndAnnounce(ctx context.Context, tx pgx.Tx, in install, userID, reason string, eventID func(string) string) error {
	if err := removeInstall(ctx, tx, in); err != nil {
		return err
	}
	now := s.now().UTC()
	ce, err := outbox.New(events.Source(consumer), events.TypeInstallRevoked, events.InstallRevoked{
		InstallID: in.ID, IntegrationID: in.IntegrationID, Name: in.Name, UserID: userID,
		Reason: reason, Sandbox: in.Sandbox, RevokedAt: now,
	})
	if err != nil {
		return err
	}
	if eventID != nil {
		ce.SetID(eventID(in.ID))
	}
	ce.SetTime(now)
	ce.SetSubject(in.ID)
	_, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: events.InstallKey(in.IntegrationID, userID), CloudEvent: ce})
	return err
}

// derivedEventID names the install.revoked event of an install ended by a consumed event:
// a name-based UUID of the event's source and id and the install, the same on every replay.
func derivedEventID(source, id string) func(string) string {
	return func(installID string) string {
		return uuid.NewSHA1(eventIDSpace, []byte(source+"\n"+id+"\n"+installID)).String()
	}
}

// lockAndMarkAll takes the advisory locks of the user's installs in integration id order (the
// install side takes one at a time, so a fixed order is enough to never deadlock) and marks
// each revoked.
func lockAndMarkAll(ctx context.Context, tx pgx.Tx, userID string, installs []install) error {
	ids := make([]string, 0, len(installs))
	for _, in := range installs {
		ids = append(ids, in.IntegrationID)
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if err := lockInstall(ctx, tx, userID, id); err != nil {
			return err
		}
		if err := markRevoked(ctx, tx, userID, id); err != nil {
			return err
		}
	}
	return nil
}
