package events

// CloudEvent types, com.myscrollr.connect.<noun>.<verb>.
const (
	TypeIntegrationRegistered     = "com.myscrollr.connect.integration.registered"
	TypeIntegrationPublished      = "com.myscrollr.connect.integration.published"
	TypeIntegrationUnpublished    = "com.myscrollr.connect.integration.unpublished"
	TypeIntegrationVersionCreated = "com.myscrollr.connect.integration.version.created"
	TypeIntegrationDeprecated     = "com.myscrollr.connect.integration.deprecated"
	TypeIntegrationTierChanged    = "com.myscrollr.connect.integration.tier.changed"
	TypeVerificationRequested     = "com.myscrollr.connect.integration.verification.requested"
	TypeInstallRequested          = "com.myscrollr.connect.install.requested"
	TypeInstallCompleted          = "com.myscrollr.connect.install.completed"
	TypeInstallRevoked            = "com.myscrollr.connect.install.revoked" // an uninstall, whatever its cause
	// An install must end for a reason of the payments (payment_failed, refunded); uninstall
	// revokes it and announces install.revoked.
	TypeInstallRevokeRequested  = "com.myscrollr.connect.install.revoke.requested"
	TypePaymentSucceeded        = "com.myscrollr.connect.payment.succeeded"
	TypePaymentFailed           = "com.myscrollr.connect.payment.failed"
	TypeSubscriptionEnded       = "com.myscrollr.connect.subscription.ended"
	TypeSubscriptionUpdated     = "com.myscrollr.connect.subscription.updated"
	TypePaymentRefunded         = "com.myscrollr.connect.payment.refunded"
	TypeDeveloperAccountUpdated = "com.myscrollr.connect.developer.account.updated"
	TypeUserDeleted             = "com.myscrollr.connect.user.deleted"
	TypeDeveloperRoleChanged    = "com.myscrollr.connect.developer.role.changed"
	TypeHealthChanged           = "com.myscrollr.connect.health.changed"
	TypeDataReceived            = "com.myscrollr.connect.data.received"

	// Lifecycle events: what an integration itself receives (notify delivers them on
	// integrations.{name}.lifecycle and, for HTTP delivery, to POST {base_url}/lifecycle/<verb>).
	TypeLifecycleInstall   = "com.myscrollr.connect.lifecycle.install"
	TypeLifecycleUninstall = "com.myscrollr.connect.lifecycle.uninstall"
	TypeLifecycleRedact    = "com.myscrollr.connect.lifecycle.redact"
)

// LifecycleTypes lists the lifecycle event types, the ones integrations receive.
func LifecycleTypes() []string {
	return []string{TypeLifecycleInstall, TypeLifecycleUninstall, TypeLifecycleRedact}
}

// LifecycleVerb is the last segment of a lifecycle type ("install", "uninstall", "redact"):
// the path POST {base_url}/lifecycle/<verb> of HTTP delivery. It is "" for other types.
func LifecycleVerb(eventType string) string {
	switch eventType {
	case TypeLifecycleInstall:
		return "install"
	case TypeLifecycleUninstall:
		return "uninstall"
	case TypeLifecycleRedact:
		return "redact"
	}
	return ""
}

// Types lists every event type of the platform, in the order above.
func Types() []string {
	return []string{
		TypeIntegrationRegistered, TypeIntegrationPublished, TypeIntegrationUnpublished,
		TypeIntegrationVersionCreated, TypeInstallRequested, TypeInstallCompleted,
		TypeInstallRevoked, TypePaymentSucceeded, TypePaymentFailed, TypeSubscriptionEnded,
		TypeUserDeleted, TypeDeveloperRoleChanged, TypeHealthChanged, TypeDataReceived,
		TypeIntegrationDeprecated, TypeIntegrationTierChanged, TypeVerificationRequested,
		TypeLifecycleInstall, TypeLifecycleUninstall, TypeLifecycleRedact,
		TypeSubscriptionUpdated, TypePaymentRefunded, TypeDeveloperAccountUpdated,
		TypeInstallRevokeRequested,
	}
}

// DataFor returns a pointer to a new, empty payload of the given event type, ready for
// json.Unmarshal, or nil if the type is not a platform event type.
func DataFor(eventType string) any {
	switch eventType {
	case TypeIntegrationRegistered:
		return new(IntegrationRegistered)
	case TypeIntegrationPublished:
		return new(IntegrationPublished)
	case TypeIntegrationUnpublished:
		return new(IntegrationUnpublished)
	case TypeIntegrationVersionCreated:
		return new(IntegrationVersionCreated)
	case TypeInstallRequested:
		return new(InstallRequested)
	case TypeInstallCompleted:
		return new(InstallCompleted)
	case TypeInstallRevoked:
		return new(InstallRevoked)
	case TypeInstallRevokeRequested:
		return new(InstallRevokeRequested)
	case TypePaymentSucceeded:
		return new(PaymentSucceeded)
	case TypePaymentFailed:
		return new(PaymentFailed)
	case TypeSubscriptionEnded:
		return new(SubscriptionEnded)
	case TypeSubscriptionUpdated:
		return new(SubscriptionUpdated)
	case TypePaymentRefunded:
		return new(PaymentRefunded)
	case TypeDeveloperAccountUpdated:
		return new(DeveloperAccountUpdated)
	case TypeUserDeleted:
		return new(UserDeleted)
	case TypeDeveloperRoleChanged:
		return new(DeveloperRoleChanged)
	case TypeHealthChanged:
		return new(HealthChanged)
	case TypeDataReceived:
		return new(DataReceived)
	case TypeIntegrationDeprecated:
		return new(IntegrationDeprecated)
	case TypeIntegrationTierChanged:
		return new(IntegrationTierChanged)
	case TypeVerificationRequested:
		return new(VerificationRequested)
	case TypeLifecycleInstall:
		return new(LifecycleInstall)
	case TypeLifecycleUninstall:
		return new(LifecycleUninstall)
	case TypeLifecycleRedact:
		return new(LifecycleRedact)
	}
	return nil
}

// SourcePrefix prefixes the source attribute of every event the platform emits; the function
// name follows it.
const SourcePrefix = "/myscrollr/connect/"

// Source returns the source attribute of events emitted by function, e.g. Source("install").
func Source(function string) string { return SourcePrefix + function }

// ExtPartitionKey is the CloudEvents Partitioning extension; the Kafka binding maps it to the
// record key.
const ExtPartitionKey = "partitionkey"

// DataContentType is the datacontenttype of every platform event.
const DataContentType = "application/json"
