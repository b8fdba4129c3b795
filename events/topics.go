package events

// Topics of the platform.
const (
	// TopicEvents carries platform events; the record key is the integration id, except for a
	// user's install events, keyed by InstallKey (the integration and the user).
	TopicEvents = "connect.events"
	// TopicData carries normalized data records (TypeDataReceived).
	TopicData = "connect.data"
	// DLQSuffix is appended to a topic's name to name its dead-letter topic.
	DLQSuffix = ".dlq"
)

// LifecycleTopic is the topic an integration reads its lifecycle events from:
// integrations.{name}.lifecycle.
func LifecycleTopic(name string) string { return "integrations." + name + ".lifecycle" }

// DataTopic is the topic a push integration writes its records to: integrations.{name}.data.
func DataTopic(name string) string { return "integrations." + name + ".data" }

// DLQ is the dead-letter topic of topic: topic + ".dlq".
func DLQ(topic string) string { return topic + DLQSuffix }

// InstallKey is the Kafka key (the partitionkey extension, the outbox's aggregateid) of the
// events about one user's install of one integration: install.requested, install.completed and
// install.revoked. Their order matters only within that pair (installed, then revoked, then
// installed again), and keying them by the integration alone would put every install of a
// popular integration on one partition, which an ordered Trigger delivers one at a time.
func InstallKey(integrationID, userID string) string { return integrationID + "/" + userID }
