module github.com/myscrollr/connect/functions

go 1.26.0

require (
	github.com/myscrollr/connect/events v0.0.0-00010101000000-000000000000
	github.com/myscrollr/connect/schemas v0.0.0-00010101000000-000000000000
	github.com/myscrollr/connect/shared v0.0.0-00010101000000-000000000000
)

require go.uber.org/goleak v1.3.0 // indirect

require (
	github.com/cloudevents/sdk-go/v2 v2.16.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jackc/pgio v1.0.0 // indirect
	github.com/jackc/pglogrepl v0.0.0-20251213150135-2e8d0df862c1 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	github.com/json-iterator/go v1.1.12 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.3-0.20250322232337-35a7c28c31ee // indirect
	github.com/myscrollr/connect/infra/local v0.0.0-00010101000000-000000000000
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/twmb/franz-go v1.22.3 // indirect
	github.com/twmb/franz-go/pkg/kfake v0.0.0-20260918054303-01f206a7e32c // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
	go.uber.org/multierr v1.11.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace github.com/myscrollr/connect/shared => ../shared

replace github.com/myscrollr/connect/schemas => ../schemas

replace github.com/myscrollr/connect/events => ../events

replace github.com/myscrollr/connect/infra/local => ../infra/local
