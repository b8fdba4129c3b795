package main

import "time"

// Subscription is what GET /v1/installs (and an installed answer of POST /v1/installs) shows
// of a paid install's subscription: the newest of the user's subscriptions to the integration,
// in the state functions/stripe-webhook keeps (the newest Stripe object, never arrival order).
// One-time and free installs have none (null).
type Subscription struct {
	// Status is Stripe's: trialing, active, past_due, unpaid, canceled, incomplete,
	// incomplete_expired or paused.
	Status            string     `json:"status"`
	CurrentPeriodEnd  *time.Time `json:"current_period_end"`
	CancelAtPeriodEnd bool       `json:"cancel_at_period_end"`
	// AccessEndedAt is set once the platform ended the access it pays for (the install is then
	// being revoked), with AccessEndReason subscription_ended or payment_failed.
	AccessEndedAt   *time.Time `json:"access_ended_at,omitempty"`
	AccessEndReason string     `json:"access_end_reason,omitempty"`
}

// subscriptionJoin adds the newest subscription of each install's user and integration to
// installColumns (columns sub.*, all null without one).
const subscriptionJoin = ` LEFT JOIN LATERAL (SELECT s.status, s.current_period_end, s.cancel_at_period_end, s.access_ended_at,
		s.access_end_reason FROM subscriptions s WHERE s.user_id = ui.user_id AND s.integration_id = ui.integration_id
		ORDER BY s.created_at DESC, s.stripe_subscription_id DESC LIMIT 1) sub ON true`

// subscriptionRow receives the sub.* columns of subscriptionJoin.
type subscriptionRow struct {
	status, endReason *string
	periodEnd, ended  *time.Time
	cancelAtEnd       *bool
}

func (r *subscriptionRow) dest() []any {
	return []any{&r.status, &r.periodEnd, &r.cancelAtEnd, &r.ended, &r.endReason}
}

func (r *subscriptionRow) value() *Subscription {
	if r.status == nil {
		return nil
	}
	s := &Subscription{Status: *r.status, CurrentPeriodEnd: utc(r.periodEnd), AccessEndedAt: utc(r.ended)}
	if r.cancelAtEnd != nil {
		s.CancelAtPeriodEnd = *r.cancelAtEnd
	}
	if r.endReason != nil {
		s.AccessEndReason = *r.endReason
	}
	return s
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
