// Package wire holds every format rloc speaks on the wire: the LISP data
// header (RFC 9300 §5.3) as a typed view over []byte, the control messages of
// RFC 9301 and its companions as Append/Parse pairs over reusable structs, and
// the address encodings (AFIs and the LCAFs of RFC 8060).
//
// Conventions, after quic-go's internal/wire and gVisor's pkg/tcpip/header:
//   - Parse methods read into the receiver and reuse its slices, so a struct
//     kept by the caller parses message after message without allocating.
//   - Append methods append the encoding to b and return the extended slice.
//   - Len methods return the encoded length.
//   - Every error is one of the typed errors below, wrapped with context.
//
// This package imports only the standard library.
package wire
