package ospfapi

import "testing"

// FuzzParseEvent: any notification body parses or fails cleanly, and an
// LSA's body never reaches past the message.
func FuzzParseEvent(f *testing.F) {
	lsa := []byte{0, 5, 0x42, 10, 4, 0, 0, 0, 10, 255, 0, 9, 0x80, 0, 0, 1, 0, 0, 0, 24, 9, 9, 9, 9}
	f.Add(uint8(MsgLSAUpdateNotify), append([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, lsa...))
	f.Add(uint8(MsgReadyNotify), []byte{10, 4, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		ev, err := parseEvent(MsgType(typ), b)
		if err != nil {
			return
		}
		if len(ev.Body) > len(b) {
			t.Fatalf("body of %d bytes from %d", len(ev.Body), len(b))
		}
	})
}
