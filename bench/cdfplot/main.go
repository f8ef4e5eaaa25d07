// Command cdfplot draws the cumulative distribution of latency samples as a
// PNG with a logarithmic time axis, one line per series, like Fig. 6 of the
// LISP-MSX article (shared/REFERENCES.md item 3). It reads the CSV that
// BenchmarkMSXResolution writes (scenario,i,rtt_ms; a header line, one line
// per sample) and needs nothing but the standard library and a built-in
// bitmap font, so the figure can be regenerated anywhere:
//
//	go run ./bench/cdfplot -in samples.csv -out bench/results/msx-fig6.png \
//	    -title "..." -label 'invoke=(1) interconnect, invoke'
//
// make msx-experiment runs the benchmark and then this.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one named set of samples in milliseconds.
type Series struct {
	Name    string
	Label   string
	Samples []float64
}

// maxSamples bounds what ReadSamples accepts (every series together).
const maxSamples = 1 << 20

// ReadSamples reads scenario,i,rtt_ms lines (after a header line starting
// with "scenario") into series, in the order the scenarios first appear.
// A line that is not three fields with a positive finite time is an error
// naming its line number.
func ReadSamples(r io.Reader) ([]Series, error) {
	var out []Series
	idx := map[string]int{}
	sc := bufio.NewScanner(r)
	total := 0
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || (ln == 1 && strings.HasPrefix(line, "scenario")) {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 3 || f[0] == "" {
			return nil, fmt.Errorf("line %d: want scenario,i,rtt_ms, got %q", ln, line)
		}
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("line %d: rtt_ms %q: not a positive number", ln, f[2])
		}
		if total++; total > maxSamples {
			return nil, fmt.Errorf("line %d: more than %d samples", ln, maxSamples)
		}
		i, ok := idx[f[0]]
		if !ok {
			i = len(out)
			idx[f[0]] = i
			out = append(out, Series{Name: f[0], Label: f[0]})
		}
		out[i].Samples = append(out[i].Samples, v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no samples")
	}
	return out, nil
}

// Plot is the figure's layout.
type Plot struct {
	W, H  int
	Title string
	XName string
}

// margins of the plot area (pixels).
const (
	left, right, top, bottom = 70, 30, 40, 80
)

// palette holds the series' colours (colour-blind friendly, Okabe-Ito).
var palette = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xD5, 0x5E, 0x00, 0xff}, // vermilion
	{0xCC, 0x79, 0xA7, 0xff}, // purple
	{0x00, 0x9E, 0x73, 0xff}, // green
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
}

var (
	black = color.RGBA{0, 0, 0, 0xff}
	grid  = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	major = color.RGBA{0x99, 0x99, 0x99, 0xff}
)

// legendLine is the height of a legend line (pixels).
const legendLine = 18

// decades returns the powers of ten that enclose every sample.
func decades(ss []Series) (lo, hi float64) {
	mn, mx := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.Samples {
			mn, mx = min(mn, v), max(mx, v)
		}
	}
	lo, hi = math.Floor(math.Log10(mn)), math.Ceil(math.Log10(mx))
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// Render draws the CDF of every series.
func (p Plot) Render(ss []Series) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, p.W, p.H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	// The legend goes below the axis label, a line per series.
	x0, x1, y0, y1 := left, p.W-right, p.H-bottom-legendLine*len(ss), top
	lo, hi := decades(ss)
	xOf := func(v float64) int {
		return x0 + int(math.Round((math.Log10(v)-lo)/(hi-lo)*float64(x1-x0)))
	}
	yOf := func(f float64) int { return y0 - int(math.Round(f*float64(y0-y1))) }

	// Grid: every 0.1 of the CDF, each decade and its 2..9 multiples.
	for i := 0; i <= 10; i++ {
		y := yOf(float64(i) / 10)
		hline(img, x0, x1, y, grid)
		if i%2 == 0 {
			text(img, x0-8-7*4, y+4, fmt.Sprintf("%.1f", float64(i)/10), black)
		}
	}
	for d := lo; d <= hi; d++ {
		x := xOf(math.Pow(10, d))
		vline(img, x, y1, y0, major)
		vline(img, x, y0, y0+6, black)
		lbl := strconv.FormatFloat(math.Pow(10, d), 'f', -1, 64)
		text(img, x-len(lbl)*7/2, y0+18, lbl, black)
		for m := 2; m <= 9 && d < hi; m++ {
			xm := xOf(float64(m) * math.Pow(10, d))
			vline(img, xm, y1, y0, grid)
			vline(img, xm, y0, y0+4, black)
		}
	}
	hline(img, x0, x1, y0, black)
	vline(img, x0, y1, y0, black)
	text(img, (x0+x1)/2-len(p.XName)*7/2, y0+40, p.XName, black)
	text(img, 8, y1-14, "CDF", black)
	text(img, (p.W-len(p.Title)*7)/2, 18, p.Title, black)

	// The step function of each series.
	for i, s := range ss {
		c := palette[i%len(palette)]
		v := slices.Clone(s.Samples)
		slices.Sort(v)
		px, py := xOf(v[0]), yOf(0)
		for j, t := range v {
			x, y := xOf(t), yOf(float64(j+1)/float64(len(v)))
			thick(img, px, py, x, py, c)
			thick(img, x, py, x, y, c)
			px, py = x, y
		}
	}
	// Legend, under the plot.
	for i, s := range ss {
		c := palette[i%len(palette)]
		y := y0 + 66 + legendLine*i
		for k := -1; k <= 1; k++ {
			hline(img, x0+10, x0+34, y-4+k, c)
		}
		text(img, x0+42, y, s.Label, black)
	}
	return img
}

// hline and vline draw one-pixel lines.
func hline(img *image.RGBA, xa, xb, y int, c color.RGBA) {
	for x := min(xa, xb); x <= max(xa, xb); x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, ya, yb int, c color.RGBA) {
	for y := min(ya, yb); y <= max(ya, yb); y++ {
		img.SetRGBA(x, y, c)
	}
}

// thick draws a horizontal or vertical segment two pixels wide.
func thick(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA) {
	if ya == yb {
		hline(img, xa, xb, ya, c)
		hline(img, xa, xb, ya-1, c)
		return
	}
	vline(img, xa, ya, yb, c)
	vline(img, xa+1, ya, yb, c)
}

// text writes s with its baseline at y in the 7x13 bitmap font.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// labels collects -label name=text flags.
type labels map[string]string

func (l labels) String() string { return fmt.Sprint(map[string]string(l)) }

func (l labels) Set(v string) error {
	k, t, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=text, got %q", v)
	}
	l[k] = t
	return nil
}

func main() {
	in := flag.String("in", "", "CSV of samples (scenario,i,rtt_ms)")
	out := flag.String("out", "", "PNG to write")
	title := flag.String("title", "", "title above the plot")
	xname := flag.String("xlabel", "mapping resolution latency (ms, log scale)", "x axis label")
	w := flag.Int("width", 900, "image width (pixels)")
	h := flag.Int("height", 640, "image height (pixels)")
	lbl := labels{}
	flag.Var(lbl, "label", "name=text: the legend of series name (repeatable); its median is appended")
	flag.Parse()
	if err := run(*in, *out, Plot{W: *w, H: *h, Title: *title, XName: *xname}, lbl); err != nil {
		fmt.Fprintln(os.Stderr, "cdfplot:", err)
		os.Exit(1)
	}
}

func run(in, out string, p Plot, lbl labels) error {
	if in == "" || out == "" {
		return errors.New("-in and -out are required")
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	ss, err := ReadSamples(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if minH := top + bottom + legendLine*len(ss) + 100; p.W < left+right+100 || p.H < minH || p.W > 8000 || p.H > 8000 {
		return fmt.Errorf("image %dx%d: want %dx%d to 8000x8000", p.W, p.H, left+right+100, minH)
	}
	for i := range ss {
		if t, ok := lbl[ss[i].Name]; ok {
			ss[i].Label = t
		}
		v := slices.Clone(ss[i].Samples)
		slices.Sort(v)
		ss[i].Label += fmt.Sprintf("  (median %.2f ms, n=%d)", v[(len(v)-1)/2], len(v))
	}
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(o, p.Render(ss)); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}
