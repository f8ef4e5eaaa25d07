package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSamples(t *testing.T) {
	ss, err := ReadSamples(strings.NewReader("scenario,i,rtt_ms\na,0,1.5\nb,0,10\na,1,0.25\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].Name != "a" || len(ss[0].Samples) != 2 || ss[0].Samples[1] != 0.25 || ss[1].Samples[0] != 10 {
		t.Fatalf("got %+v", ss)
	}
	for in, want := range map[string]string{
		"":                           "no samples",
		"a,0\n":                      "line 1: want scenario,i,rtt_ms",
		"scenario\na,0,x\n":          "line 2: rtt_ms \"x\"",
		"a,0,0\n":                    "not a positive number",
		"a,0,-1\n":                   "not a positive number",
		"a,0,NaN\n":                  "not a positive number",
		"a,0,+Inf\n":                 "not a positive number",
		",0,1\n":                     "line 1",
		"a,0,1\nscenario,i,rtt_ms\n": "line 2",
	} {
		if _, err := ReadSamples(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", in, err, want)
		}
	}
}

// TestRender: a figure of the right size with each series drawn in its
// colour, the x axis spanning the samples' decades.
func TestRender(t *testing.T) {
	ss := []Series{{Name: "a", Label: "a", Samples: []float64{0.8, 0.9, 1.2}}, {Name: "b", Label: "b", Samples: []float64{30, 35, 40}}}
	if lo, hi := decades(ss); lo != -1 || hi != 2 {
		t.Fatalf("decades %v..%v, want -1..2", lo, hi)
	}
	img := Plot{W: 600, H: 400, Title: "t", XName: "ms"}.Render(ss)
	if b := img.Bounds(); b.Dx() != 600 || b.Dy() != 400 {
		t.Fatalf("bounds %v", b)
	}
	count := map[int]int{}
	for y := range 400 {
		for x := range 600 {
			c := img.RGBAAt(x, y)
			for i := range ss {
				if c == palette[i] {
					count[i]++
				}
			}
		}
	}
	for i := range ss {
		if count[i] < 100 {
			t.Errorf("series %d: %d pixels in its colour", i, count[i])
		}
	}
	// Series a lies left of series b (log axis, a decade and more apart).
	firstX := func(i int) int {
		for x := range 600 {
			for y := range 400 {
				if img.RGBAAt(x, y) == palette[i] && y < 300 {
					return x
				}
			}
		}
		return -1
	}
	if a, b := firstX(0), firstX(1); a < 0 || b < 0 || a >= b {
		t.Errorf("series a starts at x=%d, b at x=%d", a, b)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "s.csv"), filepath.Join(dir, "s.png")
	if err := os.WriteFile(in, []byte("scenario,i,rtt_ms\nx,0,1\nx,1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, out, Plot{W: 300, H: 30, Title: "t"}, labels{}); err == nil || !strings.Contains(err.Error(), "300x30") {
		t.Fatalf("tiny image: %v", err)
	}
	if err := run(in, out, Plot{W: 500, H: 400, Title: "t"}, labels{"x": "series x"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width != 500 || cfg.Height != 400 {
		t.Fatalf("png %+v, %v", cfg, err)
	}
}

func FuzzReadSamples(f *testing.F) {
	f.Add("scenario,i,rtt_ms\na,0,1.5\nb,0,10\n")
	f.Add("a,0,1e-300\n")
	f.Fuzz(func(t *testing.T, in string) {
		ss, err := ReadSamples(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, s := range ss {
			for _, v := range s.Samples {
				if !(v > 0) {
					t.Fatalf("sample %v accepted", v)
				}
			}
		}
		_ = Plot{W: 300, H: 300}.Render(ss)
	})
}
