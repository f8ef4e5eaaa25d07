// Package xsk implements ring.Port on AF_XDP sockets.
package xsk
