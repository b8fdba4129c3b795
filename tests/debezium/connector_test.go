// Package debezium holds Debezium to the relay's contract: under the connector configuration in
// infra/debezium, Debezium's outbox event router turns an outbox row into a Kafka record that
// events/kafkace decodes to the same CloudEvent as the record the relay (functions/relay) makes
// of that row, so either can feed the consumers.
//
// Kafka Connect is a JVM service and does not run here. The tests build the record the way
// Debezium does (io.debezium.transforms.outbox.EventRouterDelegate in debezium-connect-plugins,
// with Kafka Connect's StringConverter and SimpleHeaderConverter) from every setting it depends
// on, read from infra/debezium/connector.json, and they refuse a configuration they do not model
// (another converter, another transform, an envelope placement) rather than guess. The rows are
// real: written by shared/outbox into a migrated PostgreSQL database (shared/pgtest) and read
// back as text, as pgoutput sends them. The relay's record is kafkace.Encode of the event the row
// describes, which the relay is held to byte for byte (functions/relay/event_test.go).
package debezium

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/myscrollr/connect/shared/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The repository's files these tests read, relative to this package.
const (
	connectorFile = "../../infra/debezium/connector.json"
	manifestFile  = "../../infra/debezium/kafkaconnector.yaml"
	servicesFile  = "../../infra/knative/20-services.yaml"
)

// The relay's defaults for RELAY_PUBLICATION and RELAY_SLOT (functions/relay, DefaultConfig),
// used when its Service in infra/knative does not set them.
const (
	relayDefaultPublication = "connect_outbox"
	relayDefaultSlot        = "connect_relay"
)

// connector is the Kafka Connect REST body of connector.json (POST /connectors).
type connector struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

// loadConnector reads connector.json; the test is skipped outside the repository.
func loadConnector(t *testing.T) connector {
	t.Helper()
	data, err := os.ReadFile(connectorFile)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s not found: not in the repository", connectorFile)
	}
	if err != nil {
		t.Fatal(err)
	}
	var c connector
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v (config values must all be JSON strings)", connectorFile, err)
	}
	if c.Name == "" || len(c.Config) == 0 {
		t.Fatalf("%s: want a name and a config", connectorFile)
	}
	return c
}

// Class names of what the model below understands.
const (
	eventRouterClass      = "io.debezium.transforms.outbox.EventRouter"
	stringConverter       = "org.apache.kafka.connect.storage.StringConverter"
	simpleHeaderConverter = "org.apache.kafka.connect.storage.SimpleHeaderConverter"
)

// router is what the outbox event router does with a row, as configured.
type router struct {
	idField      string // table.field.event.id: copied into the "id" header
	keyField     string // table.field.event.key: the record key
	payloadField string // table.field.event.payload: the record value
	routeBy      string // route.by.field: the column whose value, through topicRE, is the topic
	topicRE      *regexp.Regexp
	replacement  string
	headers      []placement // table.fields.additional.placement, all of them header placements
	// contextHeaders: extended.headers.enabled, Debezium's __debezium.context.* headers.
	contextHeaders bool
}

// placement is one "column:header:alias" of table.fields.additional.placement.
type placement struct {
	column, header string
}

// routerOf reads the outbox event router's settings from the connector config (defaults as in
// EventRouterConfigDefinition) and refuses what the record model does not cover.
func routerOf(cfg map[string]string) (router, error) {
	get := func(key, def string) string {
		if v, ok := cfg[key]; ok {
			return strings.TrimSpace(v)
		}
		return def
	}
	var errs []error
	for key, want := range map[string]string{
		"key.converter":    stringConverter,       // the key is the aggregate id's UTF-8 bytes
		"value.converter":  stringConverter,       // the value is the payload's JSON text, not a JSON string or an envelope
		"header.converter": simpleHeaderConverter, // header values are plain UTF-8, as the CloudEvents Kafka binding wants
	} {
		if got := cfg[key]; got != want {
			errs = append(errs, fmt.Errorf("%s = %q, the model needs %s", key, got, want))
		}
	}
	transforms := strings.Split(get("transforms", ""), ",")
	if len(transforms) != 1 || strings.TrimSpace(transforms[0]) == "" {
		return router{}, errors.Join(append(errs, fmt.Errorf("transforms = %q: want exactly one, the outbox event router", cfg["transforms"]))...)
	}
	p := "transforms." + strings.TrimSpace(transforms[0]) + "."
	if got := get(p+"type", ""); got != eventRouterClass {
		errs = append(errs, fmt.Errorf("%stype = %q, want %s", p, got, eventRouterClass))
	}
	if got := get(p+"table.expand.json.payload", "false"); got != "false" {
		errs = append(errs, fmt.Errorf("%stable.expand.json.payload = %q: expanding turns the payload into a Connect struct that the converter re-serialises", p, got))
	}
	if got := get(p+"table.field.event.schema.version", ""); got != "" {
		errs = append(errs, fmt.Errorf("%stable.field.event.schema.version is set: not modelled", p))
	}
	if got := get(p+"table.field.additional.missing", "error"); got != "error" {
		errs = append(errs, fmt.Errorf("%stable.field.additional.missing = %q: a missing column must stop the connector, not drop an attribute", p, got))
	}
	r := router{
		idField:        get(p+"table.field.event.id", "id"),
		keyField:       get(p+"table.field.event.key", "aggregateid"),
		payloadField:   get(p+"table.field.event.payload", "payload"),
		routeBy:        get(p+"route.by.field", "aggregatetype"),
		replacement:    get(p+"route.topic.replacement", "outbox.event.${routedByValue}"),
		contextHeaders: get("extended.headers.enabled", "true") != "false",
	}
	// Kafka's RegexRouter: a topic that the whole pattern matches is replaced (Java's
	// replaceFirst); Go reads the named group (?<name>) and ${name} alike.
	re, err := regexp.Compile(`\A(?:` + get(p+"route.topic.regex", "(?<routedByValue>.*)") + `)\z`)
	if err != nil {
		errs = append(errs, fmt.Errorf("%sroute.topic.regex: %v", p, err))
	}
	r.topicRE = re
	if v := get(p+"table.fields.additional.placement", ""); v != "" {
		for f := range strings.SplitSeq(v, ",") {
			parts := strings.Split(f, ":")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			switch {
			case len(parts) < 2 || len(parts) > 3:
				errs = append(errs, fmt.Errorf("%stable.fields.additional.placement: %q is not column:placement[:alias]", p, f))
			case !strings.EqualFold(parts[1], "header"):
				errs = append(errs, fmt.Errorf("%stable.fields.additional.placement: %q: only header placements keep the value the raw payload", p, f))
			default:
				h := placement{column: parts[0], header: parts[0]}
				if len(parts) == 3 {
					h.header = parts[2]
				}
				r.headers = append(r.headers, h)
			}
		}
	}
	return r, errors.Join(errs...)
}

// relaySettings are the relay's publication and slot: RELAY_PUBLICATION and RELAY_SLOT of its
// Knative Service (infra/knative/20-services.yaml), or the relay's defaults.
func relaySettings(t *testing.T) (publication, slot string) {
	t.Helper()
	data, err := os.ReadFile(servicesFile)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := yamlDocuments(data)
	if err != nil {
		t.Fatalf("%s: %v", servicesFile, err)
	}
	publication, slot = relayDefaultPublication, relayDefaultSlot
	found := false
	for _, d := range docs {
		var s struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Env []struct {
								Name      string          `json:"name"`
								Value     string          `json:"value"`
								ValueFrom json.RawMessage `json:"valueFrom"`
							} `json:"env"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(d, &s); err != nil {
			t.Fatalf("%s: %v", servicesFile, err)
		}
		if s.Kind != "Service" || s.Metadata.Name != "relay" {
			continue
		}
		found = true
		for _, c := range s.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name != "RELAY_PUBLICATION" && e.Name != "RELAY_SLOT" {
					continue
				}
				if e.ValueFrom != nil {
					t.Fatalf("relay Service sets %s from elsewhere: cannot compare it with the connector", e.Name)
				}
				if e.Name == "RELAY_PUBLICATION" {
					publication = e.Value
				} else {
					slot = e.Value
				}
			}
		}
	}
	if !found {
		t.Fatalf("%s has no relay Service", servicesFile)
	}
	return publication, slot
}

// yamlDocuments splits a multi-document YAML file at "---" lines and converts each non-empty
// document to JSON (duplicate keys are an error).
func yamlDocuments(data []byte) ([][]byte, error) {
	var docs [][]byte
	for i, part := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		j, err := yaml.YAMLToJSONStrict([]byte(part))
		if err != nil {
			return nil, fmt.Errorf("document %d: %v", i+1, err)
		}
		if t := strings.TrimSpace(string(j)); t != "" && t != "null" {
			docs = append(docs, j)
		}
	}
	return docs, nil
}

func TestConnectorConfig(t *testing.T) {
	c := loadConnector(t)
	cfg := c.Config
	publication, relaySlot := relaySettings(t)

	want := map[string]string{
		"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
		// The PostgreSQL connector runs one task; pgoutput is built into PostgreSQL and is
		// what the relay decodes too.
		"tasks.max":   "1",
		"plugin.name": "pgoutput",
		// The relay's publication: FOR TABLE outbox WITH (publish = 'insert'), owned by the
		// relay or the DBA, so Debezium must not create or alter one.
		"publication.name":            publication,
		"publication.autocreate.mode": "disabled",
		"table.include.list":          "public.outbox",
		// Rows already in the outbox were relayed (or are the relay's audit trail): no snapshot.
		"snapshot.mode": "no_data",
	}
	for key, v := range want {
		if cfg[key] != v {
			t.Errorf("%s = %q, want %q", key, cfg[key], v)
		}
	}
	slot := cfg["slot.name"]
	if !regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`).MatchString(slot) {
		t.Errorf("slot.name = %q: want a lower-case PostgreSQL identifier", slot)
	}
	if slot == relaySlot {
		t.Errorf("slot.name = %q is the relay's slot: two readers of one slot lose events", slot)
	}
	skipped := strings.Split(strings.ReplaceAll(cfg["skipped.operations"], " ", ""), ",")
	for _, op := range []string{"u", "d"} {
		if !slices.Contains(skipped, op) {
			t.Errorf("skipped.operations = %q: want %q skipped (only inserts are events)", cfg["skipped.operations"], op)
		}
	}
	if _, err := routerOf(cfg); err != nil {
		t.Errorf("the outbox event router's configuration is not the modelled one:\n%v", err)
	}

	t.Run("KafkaConnector manifest says the same", func(t *testing.T) {
		data, err := os.ReadFile(manifestFile)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := yamlDocuments(data)
		if err != nil {
			t.Fatalf("%s: %v", manifestFile, err)
		}
		if len(docs) != 1 {
			t.Fatalf("%s: %d documents, want 1", manifestFile, len(docs))
		}
		var m struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Class    string            `json:"class"`
				TasksMax int               `json:"tasksMax"`
				Config   map[string]string `json:"config"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(docs[0], &m); err != nil {
			t.Fatalf("%s: %v (config values must all be strings)", manifestFile, err)
		}
		if m.Kind != "KafkaConnector" || m.Metadata.Name != c.Name {
			t.Errorf("%s: kind %q name %q, want KafkaConnector %q", manifestFile, m.Kind, m.Metadata.Name, c.Name)
		}
		// Strimzi takes the class and the task count from spec, not from the config.
		got := maps.Clone(m.Spec.Config)
		got["connector.class"] = m.Spec.Class
		got["tasks.max"] = fmt.Sprint(m.Spec.TasksMax)
		for _, k := range slices.Sorted(maps.Keys(cfg)) {
			if got[k] != cfg[k] {
				t.Errorf("%s: %s = %q, connector.json has %q", manifestFile, k, got[k], cfg[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(got)) {
			if _, ok := cfg[k]; !ok {
				t.Errorf("%s: %s is not in connector.json", manifestFile, k)
			}
		}
	})
}

func TestRouterOfRefusesWhatItDoesNotModel(t *testing.T) {
	c := loadConnector(t)
	cases := map[string]func(cfg map[string]string){
		"JSON value converter":  func(cfg map[string]string) { cfg["value.converter"] = "org.apache.kafka.connect.json.JsonConverter" },
		"default header conv.":  func(cfg map[string]string) { delete(cfg, "header.converter") },
		"expanded JSON payload": func(cfg map[string]string) { cfg["transforms.outbox.table.expand.json.payload"] = "true" },
		"envelope placement": func(cfg map[string]string) {
			cfg["transforms.outbox.table.fields.additional.placement"] += ",type:envelope:eventType"
		},
		"second transform": func(cfg map[string]string) { cfg["transforms"] = "outbox,other" },
		"missing column ignored": func(cfg map[string]string) {
			cfg["transforms.outbox.table.field.additional.missing"] = "ignore"
		},
	}
	if c.Config["transforms"] != "outbox" {
		t.Fatalf("transforms = %q: the cases below name the transform outbox", c.Config["transforms"])
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := maps.Clone(c.Config)
			change(cfg)
			if _, err := routerOf(cfg); err == nil {
				t.Error("routerOf accepted it")
			}
		})
	}
}
