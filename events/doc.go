// Package events names the CloudEvents of MyScrollr Connect: their types, sources, payloads
// and the Kafka topics they travel on. It has no dependencies beyond the standard library, so
// integration developers can import it to read their lifecycle topic.
//
// Every platform event is a CloudEvents 1.0 event in binary content mode on Kafka (see the
// kafkace package for the binding and the stream package for producers and consumers):
//
//   - type is reverse-DNS, com.myscrollr.connect.<noun>.<verb> (the Type* constants);
//   - source is the function that emitted it, [Source]("install") = "/myscrollr/connect/install";
//   - id is unique per source; consumers dedupe on source+id, since delivery is at least once;
//   - datacontenttype is application/json and data is the payload struct named after the type
//     (TypeInstallCompleted carries [InstallCompleted]); [DataFor] returns an empty payload for
//     a type, for decoding;
//   - the partitionkey extension ([ExtPartitionKey]) is the record key: the integration id on
//     connect.events, so all events of one integration stay in order.
//
// Payload conventions: JSON names are snake_case; Logto user and application ids are strings;
// integration ids are UUID strings; money is amount_cents (int64) plus an ISO 4217 currency in
// lower case, as Stripe writes it; times are RFC 3339.
package events
