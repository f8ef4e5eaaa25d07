package wire

import (
	"testing"
)

// Benchmarks of the control messages. Reproduce with:
//
//	go test -run '^$' -bench 'Map(Request|Reply|Register)' -benchmem -count 5 ./wire/
//
// Figures are recorded in bench/results/wire-control.md.

// reportPerMsg adds per-message metrics to a benchmark that handled one
// message per iteration.
func reportPerMsg(b *testing.B) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns, "ns/msg")
	if ns > 0 {
		b.ReportMetric(1e3/ns, "Mmsg/s")
	}
}

func BenchmarkMapRequestParse(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"one-record-iid-ipv4", oneRecordMapRequest()},
		{"two-rlocs-iid", goldenMapRequest},
		{"smr-probe-mapreply-xtrid", goldenMapRequestSMR},
	} {
		b.Run(c.name, func(b *testing.B) {
			var m MapRequest
			b.SetBytes(int64(len(c.msg)))
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Parse(c.msg); err != nil {
					b.Fatal(err)
				}
			}
			reportPerMsg(b)
		})
	}
}

func BenchmarkMapReplyParse(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"one-record-iid-ipv4", oneRecordMapReply()},
		{"two-records-three-locators", goldenMapReply},
	} {
		b.Run(c.name, func(b *testing.B) {
			var m MapReply
			b.SetBytes(int64(len(c.msg)))
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Parse(c.msg); err != nil {
					b.Fatal(err)
				}
			}
			reportPerMsg(b)
		})
	}
}

func BenchmarkMapReplyAppend(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  *MapReply
	}{
		{"one-record-iid-ipv4", oneRecordMapReplyMsg()},
		{"two-records-three-locators", goldenMapReplyMsg()},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 1500)
			b.SetBytes(int64(c.msg.Len()))
			b.ReportAllocs()
			var err error
			for b.Loop() {
				if buf, err = c.msg.Append(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			reportPerMsg(b)
		})
	}
}

// BenchmarkMapRegisterHMAC measures a one-record Map-Register with
// HMAC-SHA-256-128: encoding and signing, then parsing and verifying.
func BenchmarkMapRegisterHMAC(b *testing.B) {
	m := goldenMapRegisterMsg()
	b.Run("append-sign-sha256", func(b *testing.B) {
		buf := make([]byte, 0, 1500)
		b.SetBytes(int64(m.Len()))
		b.ReportAllocs()
		var err error
		for b.Loop() {
			if buf, err = m.AppendSigned(buf[:0], testKey); err != nil {
				b.Fatal(err)
			}
		}
		reportPerMsg(b)
	})
	b.Run("parse-verify-sha256", func(b *testing.B) {
		signed, err := m.AppendSigned(nil, testKey)
		if err != nil {
			b.Fatal(err)
		}
		var got MapRegister
		b.SetBytes(int64(len(signed)))
		b.ReportAllocs()
		for b.Loop() {
			if err := VerifyMapRegister(signed, testKey, &got); err != nil {
				b.Fatal(err)
			}
		}
		reportPerMsg(b)
	})
	b.Run("parse-only", func(b *testing.B) {
		signed, err := m.AppendSigned(nil, testKey)
		if err != nil {
			b.Fatal(err)
		}
		var got MapRegister
		b.SetBytes(int64(len(signed)))
		b.ReportAllocs()
		for b.Loop() {
			if err := got.Parse(signed); err != nil {
				b.Fatal(err)
			}
		}
		reportPerMsg(b)
	})
}
