#!/usr/bin/env bash
# Creates or updates every Secret the MyScrollr Connect functions and Knative objects need, in
# namespace connect (README.md in this folder lists them, with the keys and who reads them).
#
#   infra/secrets/create.sh [-f values.env] [--dry-run]
#
# Values come from the environment, or from a file of KEY=value lines (-f; read as data, never
# executed; the environment wins). Kafka credentials are read from the Secrets the Strimzi User
# Operator writes (namespace $KAFKA_NAMESPACE, default kafka) unless given. Values are never
# printed, nor passed on a command line: each goes through a file readable only by this user,
# deleted on exit. --dry-run checks that every value is there and lists what would be written.
set -euo pipefail

NAMESPACE="${NAMESPACE:-connect}"
dry_run=0
values_file=""
while [ $# -gt 0 ]; do
	case "$1" in
	-f) values_file="${2:?-f needs a file}"; shift 2 ;;
	--dry-run) dry_run=1; shift ;;
	-h | --help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "create.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

# value NAME: the value of NAME from the environment, else from the values file, else empty.
value() {
	local name="$1"
	if [ -n "${!name:-}" ]; then
		printf '%s' "${!name}"
		return
	fi
	if [ -n "$values_file" ]; then
		local line
		while IFS= read -r line || [ -n "$line" ]; do
			case "$line" in
			"$name="*) printf '%s' "${line#"$name="}"; return ;;
			esac
		done <"$values_file"
	fi
}

if [ -n "$values_file" ] && [ ! -r "$values_file" ]; then
	echo "create.sh: cannot read $values_file" >&2
	exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"

missing=()
# put SECRET KEY VARIABLE: queue key KEY of Secret SECRET with the value of VARIABLE.
put() {
	local secret="$1" key="$2" var="$3" v
	v="$(value "$var")"
	if [ -z "$v" ]; then
		missing+=("$var (Secret $secret key $key)")
		return
	fi
	mkdir -p "$work/$secret"
	(umask 077 && printf '%s' "$v" >"$work/$secret/$key")
}

# putv SECRET KEY LITERAL: a key whose value is not secret (protocol, mechanism, user name).
putv() {
	mkdir -p "$work/$1"
	printf '%s' "$3" >"$work/$1/$2"
}

# Database: one Secret per function, its own role (connect-db-<function>, key DATABASE_URL).
functions=(catalog uninstall logto-webhook relay health-probe poll registry install stripe-webhook notify ingest)
for fn in "${functions[@]}"; do
	var="DATABASE_URL_$(printf '%s' "$fn" | tr 'a-z-' 'A-Z_')"
	put "connect-db-$fn" DATABASE_URL "$var"
done
# The migration Job's owner role (infra/knative/12-jobs.yaml), which no function reads.
put connect-db-migrate DATABASE_URL DATABASE_URL_MIGRATE

# Everything else the functions read (connect-secrets).
put connect-secrets LOGTO_M2M_APP_ID LOGTO_M2M_APP_ID
put connect-secrets LOGTO_M2M_APP_SECRET LOGTO_M2M_APP_SECRET
put connect-secrets LOGTO_WEBHOOK_SIGNING_KEY LOGTO_WEBHOOK_SIGNING_KEY
put connect-secrets CLIENT_SECRET_KEYS CLIENT_SECRET_KEYS
put connect-secrets STRIPE_SECRET_KEY STRIPE_SECRET_KEY
put connect-secrets STRIPE_WEBHOOK_SECRET STRIPE_WEBHOOK_SECRET
put connect-secrets LIFECYCLE_SIGNING_KEYS LIFECYCLE_SIGNING_KEYS

# Kafka: connect-kafka-<x> holds the SCRAM-SHA-512 credentials of KafkaUser connect-<x>
# (infra/kafka/20-users.yaml) and the cluster CA, with the keys eventing-kafka-broker reads
# (control-plane/pkg/security/secret.go: protocol, sasl.mechanism, user, password, ca.crt).
# The relay reads the same keys of connect-kafka-relay (its env and its CA volume).
KAFKA_NAMESPACE="${KAFKA_NAMESPACE:-kafka}"
KAFKA_CLUSTER="${KAFKA_CLUSTER:-kafka}"
# strimzi SECRET KEY VARIABLE: export VARIABLE from a Strimzi Secret unless it is given.
strimzi() {
	local secret="$1" key="$2" var="$3" v
	[ -n "$(value "$var")" ] && return
	[ "$dry_run" = 1 ] && { export "$var=(from Strimzi)"; return; }
	v="$(kubectl -n "$KAFKA_NAMESPACE" get secret "$secret" -o "go-template={{index .data \"$key\" | base64decode}}" 2>/dev/null || true)"
	[ -n "$v" ] && export "$var=$v"
	return 0
}
strimzi "$KAFKA_CLUSTER-cluster-ca-cert" ca.crt KAFKA_CA_CRT
kafka_users=(broker sinks relay ingest-source)
for x in "${kafka_users[@]}"; do
	var="KAFKA_PASSWORD_$(printf '%s' "$x" | tr 'a-z-' 'A-Z_')"
	strimzi "connect-$x" password "$var"
	putv "connect-kafka-$x" protocol SASL_SSL
	putv "connect-kafka-$x" sasl.mechanism SCRAM-SHA-512
	putv "connect-kafka-$x" user "connect-$x"
	put "connect-kafka-$x" password "$var"
	put "connect-kafka-$x" ca.crt KAFKA_CA_CRT
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "create.sh: missing values, nothing written:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi

for dir in "$work"/*/; do
	secret="$(basename "$dir")"
	args=()
	keys=()
	for f in "$dir"*; do
		args+=("--from-file=$(basename "$f")=$f")
		keys+=("$(basename "$f")")
	done
	if [ "$dry_run" = 1 ]; then
		echo "would write Secret $NAMESPACE/$secret: ${keys[*]}"
		continue
	fi
	kubectl -n "$NAMESPACE" create secret generic "$secret" "${args[@]}" \
		--dry-run=client -o yaml | kubectl apply -f - >/dev/null
	echo "wrote Secret $NAMESPACE/$secret: ${keys[*]}"
done
