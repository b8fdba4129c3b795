package events

import (
	"encoding/json"
	"time"
)

// Integration types, delivery modes and pricing models, as stored in the catalog.
const (
	IntegrationTypeDataSource = "data_source"
	IntegrationTypeWidget     = "widget"
	IntegrationTypeApp        = "app"

	DeliveryPull = "pull"
	DeliveryPush = "push"

	PricingFree         = "free"
	PricingOneTime      = "one_time"
	PricingSubscription = "subscription"
)

// Health statuses of an integration.
const (
	HealthUnknown  = "unknown"
	HealthHealthy  = "healthy"
	HealthDegraded = "degraded"
	HealthOffline  = "offline"
)

// Reasons an install is revoked (InstallRevoked.Reason).
const (
	RevokeUserRequest     = "user_request"            // the user uninstalled it
	RevokeSubscriptionEnd = "subscription_ended"      // the paid subscription ended
	RevokeUserDeleted     = "user_deleted"            // the user's account was deleted
	RevokeUnpublished     = "integration_unpublished" // the integration left the catalog
	RevokeAdministrator   = "administrator"           // a platform administrator removed it
	RevokePaymentFailed   = "payment_failed"          // a renewal stayed unpaid past the grace period
	RevokeRefunded        = "refunded"                // a one-time purchase was refunded
)

// IntegrationRegistered: a developer registered a new integration (registry). Its Logto
// application exists; it is not published yet.
type IntegrationRegistered struct {
	IntegrationID string    `json:"integration_id"` // UUID
	Name          string    `json:"name"`           // unique slug; names its topics
	DisplayName   string    `json:"display_name"`
	Type          string    `json:"type"`                    // IntegrationType*
	DeliveryMode  string    `json:"delivery_mode,omitempty"` // Delivery*, data sources only
	DeveloperID   string    `json:"developer_id"`            // Logto user id
	LogtoAppID    string    `json:"logto_app_id"`            // Logto application id (client_id)
	Version       string    `json:"version"`                 // semantic version of the manifest
	RegisteredAt  time.Time `json:"registered_at"`
}

// IntegrationPublished: an integration entered the public catalog (registry).
type IntegrationPublished struct {
	IntegrationID string    `json:"integration_id"`
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	PublishedAt   time.Time `json:"published_at"`
}

// IntegrationUnpublished: an integration left the public catalog (registry).
type IntegrationUnpublished struct {
	IntegrationID string    `json:"integration_id"`
	Name          string    `json:"name"`
	Reason        string    `json:"reason,omitempty"`
	UnpublishedAt time.Time `json:"unpublished_at"`
}

// IntegrationVersionCreated: a developer registered a new version of a manifest (registry).
type IntegrationVersionCreated struct {
	IntegrationID string    `json:"integration_id"`
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	Changelog     string    `json:"changelog,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// Verification tiers of an integration (IntegrationTierChanged).
const (
	TierUnverified = "unverified"
	TierVerified   = "verified" // reviewed; required for paid listings
	TierFeatured   = "featured" // verified and promoted
)

// IntegrationDeprecated: a developer announced that an integration is going away (registry).
type IntegrationDeprecated struct {
	IntegrationID string    `json:"integration_id"`
	Name          string    `json:"name"`
	Message       string    `json:"message"`
	Sunset        string    `json:"sunset,omitempty"`      // YYYY-MM-DD
	Replacement   string    `json:"replacement,omitempty"` // name of the integration to use instead
	DeprecatedAt  time.Time `json:"deprecated_at"`
}

// IntegrationTierChanged: an administrator set an integration's verification tier (registry).
type IntegrationTierChanged struct {
	IntegrationID string    `json:"integration_id"`
	Name          string    `json:"name"`
	FromTier      string    `json:"from_tier"` // Tier*
	ToTier        string    `json:"to_tier"`   // Tier*
	Reason        string    `json:"reason"`
	ChangedBy     string    `json:"changed_by"` // Logto user id of the administrator
	ChangedAt     time.Time `json:"changed_at"`
}

// VerificationRequested: a developer asked for an integration to be reviewed (registry).
type VerificationRequested struct {
	IntegrationID string    `json:"integration_id"`
	Name          string    `json:"name"`
	RequestID     string    `json:"request_id"` // UUID
	Version       string    `json:"version"`
	RequestedBy   string    `json:"requested_by"` // Logto user id of the developer
	RequestedAt   time.Time `json:"requested_at"`
}

// InstallRequested: a user started an install (install). For a paid integration the install
// completes when the payment succeeds; for a free one, after consent.
type InstallRequested struct {
	RequestID         string    `json:"request_id"` // idempotency key of the request
	IntegrationID     string    `json:"integration_id"`
	Name              string    `json:"name"`
	UserID            string    `json:"user_id"` // Logto user id
	Scopes            []string  `json:"scopes"`
	PricingModel      string    `json:"pricing_model"` // Pricing*
	AmountCents       int64     `json:"amount_cents"`
	Currency          string    `json:"currency"`                      // ISO 4217, lower case
	CheckoutSessionID string    `json:"checkout_session_id,omitempty"` // Stripe, paid installs
	Sandbox           bool      `json:"sandbox"`                       // the developer installing their unpublished integration
	RequestedAt       time.Time `json:"requested_at"`
}

// InstallCompleted: an integration is installed for a user with the scopes granted (install).
type InstallCompleted struct {
	InstallID     string   `json:"install_id"` // UUID of the user_integrations row
	IntegrationID string   `json:"integration_id"`
	Name          string   `json:"name"`
	UserID        string   `json:"user_id"`
	Scopes        []string `json:"scopes"`
	PaymentID     string   `json:"payment_id,omitempty"` // paid installs
	Sandbox       bool     `json:"sandbox"`              // the developer installing their unpublished integration
	// TokensExpireAt is when the user's tokens, unclaimed, are deleted (zero: none were kept).
	TokensExpireAt time.Time `json:"tokens_expire_at,omitzero"`
	InstalledAt    time.Time `json:"installed_at"`
}

// InstallRevoked: an install was removed and its Logto grant revoked (uninstall).
type InstallRevoked struct {
	InstallID     string    `json:"install_id"`
	IntegrationID string    `json:"integration_id"`
	Name          string    `json:"name"`
	UserID        string    `json:"user_id"`
	Reason        string    `json:"reason"` // Revoke*
	Sandbox       bool      `json:"sandbox"`
	RevokedAt     time.Time `json:"revoked_at"`
}

// InstallRevokeRequested: the payments ask for an install to end (stripe-webhook: a renewal
// stayed unpaid past the grace period, a one-time purchase was refunded); uninstall revokes
// the user's install of the integration, if there is one, and announces install.revoked with
// this reason. A subscription that ended is announced by SubscriptionEnded instead.
type InstallRevokeRequested struct {
	IntegrationID string    `json:"integration_id"`
	UserID        string    `json:"user_id"`
	Reason        string    `json:"reason"`               // RevokePaymentFailed or RevokeRefunded
	PaymentID     string    `json:"payment_id,omitempty"` // the payments row it is about
	RequestedAt   time.Time `json:"requested_at"`
}

// PaymentSucceeded: Stripe confirmed a payment (stripe-webhook).
type PaymentSucceeded struct {
	PaymentID            string    `json:"payment_id"`       // UUID of the payments row
	StripeObjectID       string    `json:"stripe_object_id"` // checkout session, invoice or payment intent
	StripeSubscriptionID string    `json:"stripe_subscription_id,omitempty"`
	IntegrationID        string    `json:"integration_id"`
	UserID               string    `json:"user_id"`
	AmountCents          int64     `json:"amount_cents"`
	PlatformFeeCents     int64     `json:"platform_fee_cents"`
	Currency             string    `json:"currency"`
	PaidAt               time.Time `json:"paid_at"`
	// PendingInstallID is the pending install the Checkout Session was made for (install
	// continues it to consent); absent on a subscription's renewals.
	PendingInstallID string `json:"pending_install_id,omitempty"`
}

// PaymentRefunded: a payment was refunded in full (stripe-webhook). A refunded one-time
// purchase also ends the install (install.revoke.requested, reason refunded).
type PaymentRefunded struct {
	PaymentID            string    `json:"payment_id"`
	StripeObjectID       string    `json:"stripe_object_id"`
	StripeSubscriptionID string    `json:"stripe_subscription_id,omitempty"`
	IntegrationID        string    `json:"integration_id"`
	UserID               string    `json:"user_id"`
	AmountCents          int64     `json:"amount_cents"` // the amount refunded
	Currency             string    `json:"currency"`
	RefundedAt           time.Time `json:"refunded_at"`
}

// SubscriptionUpdated: a subscription's state changed (stripe-webhook), as the newest Stripe
// object says; deliveries that arrive late never move it back.
type SubscriptionUpdated struct {
	StripeSubscriptionID string    `json:"stripe_subscription_id"`
	IntegrationID        string    `json:"integration_id"`
	UserID               string    `json:"user_id"`
	Status               string    `json:"status"` // Stripe's subscription status
	CancelAtPeriodEnd    bool      `json:"cancel_at_period_end"`
	CurrentPeriodEnd     time.Time `json:"current_period_end,omitzero"`
	UpdatedAt            time.Time `json:"updated_at"`
}

// DeveloperAccountUpdated: a developer's Stripe connected account changed (stripe-webhook):
// whether it can take charges and receive payouts, or that it disconnected from the platform
// (deauthorized), which unpublishes the developer's paid listings (Unpublished).
type DeveloperAccountUpdated struct {
	DeveloperID      string    `json:"developer_id"`
	StripeAccountID  string    `json:"stripe_account_id"`
	ChargesEnabled   bool      `json:"charges_enabled"`
	PayoutsEnabled   bool      `json:"payouts_enabled"`
	DetailsSubmitted bool      `json:"details_submitted"`
	Deauthorized     bool      `json:"deauthorized"`
	Unpublished      []string  `json:"unpublished,omitempty"` // integration ids taken out of the catalog
	UpdatedAt        time.Time `json:"updated_at"`
}

// PaymentFailed: Stripe reported a failed payment (stripe-webhook).
type PaymentFailed struct {
	PaymentID            string    `json:"payment_id,omitempty"`
	StripeObjectID       string    `json:"stripe_object_id"`
	StripeSubscriptionID string    `json:"stripe_subscription_id,omitempty"`
	IntegrationID        string    `json:"integration_id"`
	UserID               string    `json:"user_id"`
	AmountCents          int64     `json:"amount_cents"`
	Currency             string    `json:"currency"`
	FailureCode          string    `json:"failure_code,omitempty"`    // Stripe's code
	FailureMessage       string    `json:"failure_message,omitempty"` // Stripe's message
	FailedAt             time.Time `json:"failed_at"`
}

// SubscriptionEnded: a paid subscription ended, by cancellation or non-payment
// (stripe-webhook); uninstall revokes the install.
type SubscriptionEnded struct {
	StripeSubscriptionID string    `json:"stripe_subscription_id"`
	IntegrationID        string    `json:"integration_id"`
	UserID               string    `json:"user_id"`
	Reason               string    `json:"reason,omitempty"` // Stripe's cancellation reason
	EndedAt              time.Time `json:"ended_at"`
}

// UserDeleted: a Logto user was deleted (logto-webhook); uninstall removes their installs.
type UserDeleted struct {
	UserID    string    `json:"user_id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// DeveloperRoleChanged: a user's platform roles changed in Logto (logto-webhook).
type DeveloperRoleChanged struct {
	UserID    string    `json:"user_id"`
	Roles     []string  `json:"roles"`             // roles after the change
	Added     []string  `json:"added,omitempty"`   // roles gained
	Removed   []string  `json:"removed,omitempty"` // roles lost
	ChangedAt time.Time `json:"changed_at"`
}

// HealthChanged: an integration's health status changed (health-probe).
type HealthChanged struct {
	IntegrationID  string    `json:"integration_id"`
	Name           string    `json:"name"`
	Status         string    `json:"status"`          // Health*
	PreviousStatus string    `json:"previous_status"` // Health*
	ResponseTimeMS int64     `json:"response_time_ms,omitempty"`
	Uptime30d      float64   `json:"uptime_30d"` // percent, 0-100
	CheckedAt      time.Time `json:"checked_at"`
}

// DataReceived: validated, normalized records of one integration (poll, ingest), on
// connect.data. Only records that changed are announced; a batch is split so that one event
// carries at most a few hundred records (shared/records bounds it by count and bytes).
type DataReceived struct {
	IntegrationID string       `json:"integration_id"`
	Name          string       `json:"name"`
	DeliveryMode  string       `json:"delivery_mode"` // Delivery*
	RecordCount   int          `json:"record_count"`  // len(Records)
	Records       []DataRecord `json:"records"`
	ReceivedAt    time.Time    `json:"received_at"`
}

// DataRecord is one record of a DataReceived: its stream, its key within the stream (the
// integration, stream and key identify it; a later record with the same three replaces it)
// and its data, a JSON object. With the event's integration it is the standard record envelope
// (schemas/json/record.json): the user it is about (optional), when the source observed it,
// and the version of the contract it was validated against (optional).
type DataRecord struct {
	Stream        string          `json:"stream"`
	Key           string          `json:"key"`
	User          string          `json:"user,omitempty"` // Logto user id
	ObservedAt    time.Time       `json:"observed_at,omitzero"`
	SchemaVersion string          `json:"schema_version,omitempty"`
	Data          json.RawMessage `json:"data"`
}

// LifecycleInstall: a user installed the integration (notify, from install.completed). The
// user's tokens are not in it: the integration claims them once with its own M2M token at
// POST /v1/integration/installs/{install_id}/token before TokensExpireAt.
type LifecycleInstall struct {
	InstallID      string    `json:"install_id"`
	Integration    string    `json:"integration"` // the integration's name
	UserID         string    `json:"user_id"`
	Scopes         []string  `json:"scopes"` // granted
	Sandbox        bool      `json:"sandbox"`
	TokensExpireAt time.Time `json:"tokens_expire_at,omitzero"`
	InstalledAt    time.Time `json:"installed_at"`
}

// LifecycleUninstall: the install ended (notify, from install.revoked); the grant is revoked.
type LifecycleUninstall struct {
	InstallID   string    `json:"install_id"`
	Integration string    `json:"integration"`
	UserID      string    `json:"user_id"`
	Reason      string    `json:"reason"` // Revoke*
	Sandbox     bool      `json:"sandbox"`
	RevokedAt   time.Time `json:"revoked_at"`
}

// LifecycleRedact: the user's account was deleted; the integration must delete every piece of
// data it holds about the user (notify, from install.revoked with reason user_deleted).
type LifecycleRedact struct {
	InstallID   string    `json:"install_id"`
	Integration string    `json:"integration"`
	UserID      string    `json:"user_id"`
	Sandbox     bool      `json:"sandbox"`
	RequestedAt time.Time `json:"requested_at"`
}
