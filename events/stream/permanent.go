package stream

import "errors"

// Permanent marks err as not worth retrying: the consumer sends the record to the dead-letter
// topic after this attempt. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, has a Permanent() bool method that
// returns true, as errors made by [Permanent] do. Other packages' permanent errors qualify by
// implementing that method.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }
