package wire

import "errors"

// Typed errors returned by parsers. Callers test them with errors.Is; the
// returned error usually wraps one of these with the field that failed.
var (
	// ErrTruncated means the buffer ended before the structure did.
	ErrTruncated = errors.New("wire: truncated")
	// ErrBadType means the message type is not the one the parser expects.
	ErrBadType = errors.New("wire: unexpected message type")
	// ErrBadAFI means an address family is unknown or not valid where it appears.
	ErrBadAFI = errors.New("wire: bad address family")
	// ErrBadLength means a length field disagrees with the data around it.
	ErrBadLength = errors.New("wire: bad length")
	// ErrBadValue means a field holds a value the specification forbids.
	ErrBadValue = errors.New("wire: bad field value")
	// ErrTooLarge means the message would not fit its length or count fields.
	ErrTooLarge = errors.New("wire: too large to encode")
	// ErrAuth means authentication data did not verify.
	ErrAuth = errors.New("wire: authentication failed")
)
