package events

import "errors"

// Permanent marks err as an event failure that no retry can fix (malformed data, an unknown
// type, a reference to something that does not exist). Every consumer of the platform honours
// it the same way: the HTTP runtime (shared/runtime) answers 400, so Knative sends the event
// to the dead-letter sink at once; the Kafka consumer (events/stream) dead-letters the record
// after this attempt; the Lambda adapter drops the record from the batch. Any other error is
// retried. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, has a Permanent() bool method that
// returns true, as errors made by [Permanent] do. Other packages' errors qualify by
// implementing that method, without importing this package.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }
