// Package knative reads the Knative manifests in infra/knative, the single source of truth for
// which function receives which events and schedules (docs/architecture.md), into typed
// values the local runtime and the event dispatcher use.
//
// Load parses every *.yaml / *.yml file of a directory (multi-document YAML) and keeps the
// kinds the local runtime acts on: serving.knative.dev/v1 Service, eventing.knative.dev/v1
// Broker and Trigger, sources.knative.dev PingSource and KafkaSource, and
// eventing.knative.dev/v1alpha1 KafkaSink (dead-letter topics). Core kinds that configure the
// cluster (Namespace, ConfigMap, Secret, ...) are accepted and ignored, and so are batch/v1
// Jobs (the migration and the relay's slot, run before the functions roll out: the local
// stack migrates itself and the relay creates its slot), which Load decodes strictly for the
// deployment checks (deploy.go) since no CRD schema validates them; any other kind is an
// error, so a typo in apiVersion or kind is caught early. Load also checks references: every
// Trigger names an existing Broker, every subscriber, sink and dead-letter sink names an
// existing Service or KafkaSink. Errors name the file, the kind, the object and the field.
// Load takes several directories when references cross them: infra/knative-pending (manifests
// of functions not built yet) refers to the Broker and dead-letter sinks of infra/knative.
//
// Validate checks every manifest against the openAPIV3Schema of its CustomResourceDefinition
// (the CRD files published by Knative), as a Kubernetes API server with strict field
// validation would: unknown fields are rejected unless the schema preserves them
// (x-kubernetes-preserve-unknown-fields), x-kubernetes-int-or-string accepts both, nullable
// accepts null, and int32/int64 formats bound integers. Every kind is validated (KafkaSink
// included); only core Kubernetes kinds, which have no CRD, are skipped (SkipReason).
//
// Delivery follows the Knative DeliverySpec: a Trigger's delivery replaces its Broker's, and
// when it names no dead-letter sink the Broker's is used. Durations are ISO 8601
// (PT0.2S, PT1M, P1DT2H); years and months are rejected because they have no fixed length.
package knative
