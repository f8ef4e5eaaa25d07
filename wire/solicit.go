package wire

// Authentication of the cache-solicitation messages (LISP-MSX
// Map-Solicit-Request and Map-Solicit-Response, docs/solicit.md). Both carry
// the Map-Register authentication field (RFC 9301 §5.6) right after the
// nonce, computed over the whole message with the data zeroed, with the key
// the peer ITRs of a domain share.

// SignSolicit computes the authentication data of an encoded
// Map-Solicit-Request or Map-Solicit-Response with key, in place.
func SignSolicit(msg, key []byte) error {
	return msxSign(msg, key, SubTypeMapSolicitRequest, SubTypeMapSolicitResponse)
}

// VerifySolicit checks the authentication data of an encoded
// Map-Solicit-Request or Map-Solicit-Response against key; an
// unauthenticated message (algorithm 0) fails with ErrAuth. msg is not
// modified.
func VerifySolicit(msg, key []byte) error {
	return msxVerify(msg, key, SubTypeMapSolicitRequest, SubTypeMapSolicitResponse)
}
