package wire

import "fmt"

// Authentication of the cache-solicitation messages (LISP-MSX
// Map-Solicit-Request and Map-Solicit-Response, docs/solicit.md). Both carry
// the Map-Register authentication field (RFC 9301 §5.6) right after the
// nonce, computed over the whole message with the data zeroed, with the key
// the peer ITRs of a domain share.

// SignSolicit computes the authentication data of an encoded
// Map-Solicit-Request or Map-Solicit-Response with key, in place.
func SignSolicit(msg, key []byte) error {
	off, n, alg, err := solicitAuth(msg)
	if err != nil {
		return err
	}
	return SignAuth(msg, off, n, alg, key)
}

// VerifySolicit checks the authentication data of an encoded
// Map-Solicit-Request or Map-Solicit-Response against key; an
// unauthenticated message (algorithm 0) fails with ErrAuth. msg is not
// modified.
func VerifySolicit(msg, key []byte) error {
	off, n, alg, err := solicitAuth(msg)
	if err != nil {
		return err
	}
	return VerifyAuth(msg, off, n, alg, key)
}

func solicitAuth(msg []byte) (off, n int, alg AuthAlg, err error) {
	st, err := PeekSharedSubType(msg)
	if err != nil {
		return 0, 0, 0, err
	}
	if st != SubTypeMapSolicitRequest && st != SubTypeMapSolicitResponse {
		return 0, 0, 0, fmt.Errorf("%w: %v is not a solicitation message", ErrBadType, st)
	}
	return locateAuthData(msg, msxHeaderLen)
}
