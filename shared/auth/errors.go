package auth

import "errors"

// Reasons a token is rejected. Verify wraps one of them with detail; test
// with errors.Is. [ErrScope] and [ErrClient] are authorization failures (403),
// every other one is an authentication failure (401), except
// [ErrJWKSUnavailable] which the middleware also answers with 401 because the
// token could not be proven valid.
var (
	ErrMissingToken    = errors.New("missing bearer token")
	ErrMalformed       = errors.New("malformed token")
	ErrAlgorithm       = errors.New("signing algorithm not allowed")
	ErrType            = errors.New("token type is not at+jwt")
	ErrUnknownKey      = errors.New("unknown signing key")
	ErrSignature       = errors.New("invalid signature")
	ErrIssuer          = errors.New("wrong issuer")
	ErrAudience        = errors.New("wrong audience")
	ErrExpired         = errors.New("token expired")
	ErrNotYetValid     = errors.New("token not yet valid")
	ErrJWKSUnavailable = errors.New("signing keys unavailable")
	ErrScope           = errors.New("insufficient scope")
	ErrClient          = errors.New("wrong client")
)

// reasons is the order in which Reason looks for a sentinel.
var reasons = []error{
	ErrMissingToken, ErrMalformed, ErrAlgorithm, ErrType, ErrUnknownKey, ErrSignature,
	ErrIssuer, ErrAudience, ErrExpired, ErrNotYetValid, ErrJWKSUnavailable, ErrScope, ErrClient,
}

// Reason returns the short reason of a verification error (the message of
// its sentinel), for logs and metrics labels; "error" if err carries none.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return "error"
}
