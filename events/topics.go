package events

// Topics of the platform.
const (
	// TopicEvents carries platform events; the record key is the integration id.
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
