package wire

// Golden LCAF encodings written by hand from the figures of RFC 8060 §4
// (field by field in the comment above each literal).

// AFIList (32 bytes):
//
//	40 03 00 00 | 01 00 00 18                            ; AFI 16387, Rsvd1 0, Flags 0 | Type 1, Rsvd2 0, Length 24
//	00 01 c0 00 02 01                                    ; AFI 1, 192.0.2.1
//	00 02 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 ; AFI 2, 2001:db8::1 (16 bytes)
var goldenAFIList = []byte{
	0x40, 0x03, 0x00, 0x00, 0x01, 0x00, 0x00, 0x18, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01, 0x00, 0x02,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
}

// InstanceID (18 bytes):
//
//	40 03 00 00 | 02 18 00 0a                            ; Type 2, IID mask-len 24, Length 10
//	00 12 34 56                                          ; Instance ID 0x123456
//	00 01 0a 01 00 00                                    ; AFI 1, 10.1.0.0
var goldenInstanceID = []byte{
	0x40, 0x03, 0x00, 0x00, 0x02, 0x18, 0x00, 0x0a, 0x00, 0x12, 0x34, 0x56, 0x00, 0x01, 0x0a, 0x01,
	0x00, 0x00,
}

// ASNumber (18 bytes):
//
//	40 03 00 00 | 03 00 00 0a                            ; Type 3, Rsvd2 0, Length 10
//	00 00 fb f4                                          ; AS Number 64500
//	00 01 c0 00 02 01                                    ; AFI 1, 192.0.2.1
var goldenASNumber = []byte{
	0x40, 0x03, 0x00, 0x00, 0x03, 0x00, 0x00, 0x0a, 0x00, 0x00, 0xfb, 0xf4, 0x00, 0x01, 0xc0, 0x00,
	0x02, 0x01,
}

// Geo (26 bytes):
//
//	40 03 00 00 | 05 00 00 12                            ; Type 5, Rsvd2 0, Length 18 (12 + 6)
//	80 25 18 05                                          ; N=1 lat 37 deg, 24 min, 5 sec
//	00 7a 03 02                                          ; E=0 (west) lon 122 deg, 3 min, 2 sec
//	ff ff ff f6                                          ; Altitude -10 m
//	00 01 c0 00 02 01                                    ; AFI 1, 192.0.2.1
var goldenGeo = []byte{
	0x40, 0x03, 0x00, 0x00, 0x05, 0x00, 0x00, 0x12, 0x80, 0x25, 0x18, 0x05, 0x00, 0x7a, 0x03, 0x02,
	0xff, 0xff, 0xff, 0xf6, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,
}

// NATT (36 bytes):
//
//	40 03 00 00 | 07 00 00 1c                            ; Type 7, Rsvd2 0, Length 28
//	10 f6 ee 48                                          ; MS UDP port 4342, ETR UDP port 61000
//	00 01 c6 33 64 07                                    ; Global ETR RLOC 198.51.100.7
//	00 01 c0 00 02 35                                    ; MS RLOC 192.0.2.53
//	00 01 0a 00 00 07                                    ; Private ETR RLOC 10.0.0.7
//	00 01 cb 00 71 01                                    ; RTR RLOC 203.0.113.1
var goldenNATT = []byte{
	0x40, 0x03, 0x00, 0x00, 0x07, 0x00, 0x00, 0x1c, 0x10, 0xf6, 0xee, 0x48, 0x00, 0x01, 0xc6, 0x33,
	0x64, 0x07, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x35, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x07, 0x00, 0x01,
	0xcb, 0x00, 0x71, 0x01,
}

// McastSG (28 bytes):
//
//	40 03 00 00 | 09 01 00 14                            ; Type 9, Rsvd2 J bit, Length 20
//	00 00 03 e8                                          ; Instance-ID 1000
//	00 00 20 20                                          ; Reserved, Source MaskLen 32, Group MaskLen 32
//	00 01 0a 00 00 01                                    ; AFI 1, source 10.0.0.1
//	00 01 ef 01 01 01                                    ; AFI 1, group 239.1.1.1
var goldenMcastSG = []byte{
	0x40, 0x03, 0x00, 0x00, 0x09, 0x01, 0x00, 0x14, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x20, 0x20,
	0x00, 0x01, 0x0a, 0x00, 0x00, 0x01, 0x00, 0x01, 0xef, 0x01, 0x01, 0x01,
}

// McastStarG (28 bytes):
//
//	40 03 00 00 | 09 00 00 14                            ; Type 9, Rsvd2 0, Length 20
//	00 00 00 05                                          ; Instance-ID 5
//	00 00 00 18                                          ; Reserved, Source MaskLen 0, Group MaskLen 24
//	00 01 00 00 00 00                                    ; AFI 1, source 0.0.0.0 (*)
//	00 01 ef 01 01 00                                    ; AFI 1, group 239.1.1.0
var goldenMcastStarG = []byte{
	0x40, 0x03, 0x00, 0x00, 0x09, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x18,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xef, 0x01, 0x01, 0x00,
}

// ELP (32 bytes):
//
//	40 03 00 00 | 0a 00 00 18                            ; Type 10, Rsvd2 0, Length 24
//	00 00 | 00 01 c0 00 02 01                            ; Rsvd3 0, L=0 P=0 S=0 | hop 192.0.2.1
//	00 06 | 00 01 c0 00 02 02                            ; L=1 P=1 S=0 | hop 192.0.2.2
//	00 01 | 00 01 c0 00 02 03                            ; S=1 | hop 192.0.2.3
var goldenELP = []byte{
	0x40, 0x03, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,
	0x00, 0x06, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x02, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x03,
}

// SecKey (24 bytes):
//
//	40 03 00 00 | 0b 00 00 10                            ; Type 11, Rsvd2 0, Length 16
//	01 00 01 00                                          ; Key Count 1, Rsvd3 0, Key Algorithm 1, Rsvd4 0 R=0
//	00 04 de ad be ef                                    ; Key Length 4, Key Material
//	00 01 c0 00 02 01                                    ; AFI 1, locator 192.0.2.1
var goldenSecKey = []byte{
	0x40, 0x03, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x10, 0x01, 0x00, 0x01, 0x00, 0x00, 0x04, 0xde, 0xad,
	0xbe, 0xef, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,
}

// SrcDst (24 bytes):
//
//	40 03 00 00 | 0c 00 00 10                            ; Type 12, Rsvd2 0, Length 16
//	00 00 08 10                                          ; Reserved, Source-ML 8, Dest-ML 16
//	00 01 0a 00 00 00                                    ; AFI 1, source prefix 10.0.0.0
//	00 01 0a 09 00 00                                    ; AFI 1, destination prefix 10.9.0.0
var goldenSrcDst = []byte{
	0x40, 0x03, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x10, 0x00, 0x00, 0x08, 0x10, 0x00, 0x01, 0x0a, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x0a, 0x09, 0x00, 0x00,
}

// RLE (28 bytes):
//
//	40 03 00 00 | 0d 00 00 14                            ; Type 13, Rsvd2 0, Length 20
//	00 00 00 00 | 00 01 c0 00 02 01                      ; Rsvd3 Rsvd4, Level 0 | AFI 1, 192.0.2.1
//	00 00 00 80 | 00 01 c0 00 02 02                      ; Level 128 | AFI 1, 192.0.2.2
var goldenRLE = []byte{
	0x40, 0x03, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x00,
	0x02, 0x01, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x02,
}

// RLEName (36 bytes):
//
//	40 03 00 00 | 0d 00 00 1c                            ; Type 13, Rsvd2 0, Length 28
//	00 00 00 01 | 00 01 c0 00 02 01                      ; Level 1 | AFI 1, 192.0.2.1
//	00 11 72 74 72 2d 61 00                              ; appended AFI 17 name "rtr-a" NUL (lispers.net)
//	00 00 00 02 | 00 01 c0 00 02 02                      ; Level 2 | AFI 1, 192.0.2.2 (no name)
var goldenRLEName = []byte{
	0x40, 0x03, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x00,
	0x02, 0x01, 0x00, 0x11, 0x72, 0x74, 0x72, 0x2d, 0x61, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,
	0xc0, 0x00, 0x02, 0x02,
}

// JSON (19 bytes):
//
//	40 03 00 00 | 0e 00 00 0b                            ; Type 14, Rsvd2 B=0, Length 11
//	00 07 7b 22 61 22 3a 31 7d                           ; JSON length 7, {"a":1}
//	00 00                                                ; AFI 0: no address
var goldenJSON = []byte{
	0x40, 0x03, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x0b, 0x00, 0x07, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31,
	0x7d, 0x00, 0x00,
}

// KeyValue (22 bytes):
//
//	40 03 00 00 | 0f 00 00 0e                            ; Type 15, Rsvd2 0, Length 14
//	00 11 63 6f 6c 6f 72 00                              ; key: AFI 17 "color" NUL
//	00 01 c0 00 02 01                                    ; value: AFI 1, 192.0.2.1
var goldenKeyValue = []byte{
	0x40, 0x03, 0x00, 0x00, 0x0f, 0x00, 0x00, 0x0e, 0x00, 0x11, 0x63, 0x6f, 0x6c, 0x6f, 0x72, 0x00,
	0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,
}

// Unknown200 (11 bytes):
//
//	40 03 12 34 | c8 56 00 03                            ; Rsvd1 0x12, Flags 0x34 | Type 200, Rsvd2 0x56, Length 3
//	aa bb cc                                             ; opaque body
var goldenUnknown200 = []byte{
	0x40, 0x03, 0x12, 0x34, 0xc8, 0x56, 0x00, 0x03, 0xaa, 0xbb, 0xcc,
}
