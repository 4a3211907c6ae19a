package e2e

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// The report: every scenario's verdict and figures, and charts, written when the suite ends into
// $E2E_REPORT_DIR (make e2e: e2e/report/; otherwise a temporary directory, so the charts are made,
// and can break, in make test too).
var (
	reportMu sync.Mutex
	sections []*reportSection
)

type reportSection struct {
	Name, Desc string
	Rows       [][2]string
	Charts     []string // file names
	Passed     bool
	charts     []func(dir string) (string, error)
}

func section(name, desc string) *reportSection {
	s := &reportSection{Name: name, Desc: desc}
	reportMu.Lock()
	sections = append(sections, s)
	reportMu.Unlock()
	return s
}

func (s *reportSection) row(k, v string) { s.Rows = append(s.Rows, [2]string{k, v}) }

// verdict records, when the test ends, whether it passed.
func (s *reportSection) verdict(t *testing.T) {
	t.Cleanup(func() { s.Passed = !t.Failed() })
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

func (s *reportSection) file(kind, what string) string {
	return strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(s.Name+"-"+kind+"-"+what), "-"), "-") + ".png"
}

// inFlight charts the origin's requests in flight over time against the limit.
func (s *reportSection) inFlight(j judged) {
	s.charts = append(s.charts, func(dir string) (string, error) {
		if len(j.Visits) == 0 {
			return "", nil
		}
		type ev struct {
			at time.Time
			d  int
		}
		var evs []ev
		for _, v := range j.Visits {
			evs = append(evs, ev{v.Start, 1}, ev{v.End, -1})
		}
		slices.SortFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
		t0 := evs[0].at
		var pts plotter.XYs
		n := 0
		for _, e := range evs {
			x := e.at.Sub(t0).Seconds()
			pts = append(pts, plotter.XY{X: x, Y: float64(n)})
			n += e.d
			pts = append(pts, plotter.XY{X: x, Y: float64(n)})
		}
		p := plot.New()
		p.Title.Text = j.Name + ": in flight at the origin"
		p.X.Label.Text, p.Y.Label.Text = "seconds", "requests in flight"
		l, err := plotter.NewLine(pts)
		if err != nil {
			return "", err
		}
		limit, err := plotter.NewLine(plotter.XYs{{X: 0, Y: float64(j.Limit)}, {X: pts[len(pts)-1].X, Y: float64(j.Limit)}})
		if err != nil {
			return "", err
		}
		limit.Color, limit.Dashes = color.RGBA{R: 200, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l, limit)
		p.Legend.Add("in flight", l)
		p.Legend.Add("limit", limit)
		p.Y.Min, p.Y.Max = 0, float64(j.Limit)+1
		name := s.file("inflight", j.Name)
		return name, p.Save(7*vg.Inch, 2.5*vg.Inch, filepath.Join(dir, name))
	})
}

// gaps charts the distribution of the gaps between starts against the delay.
func (s *reportSection) gaps(j judged) {
	s.charts = append(s.charts, func(dir string) (string, error) {
		var vals plotter.Values
		for i := 1; i < len(j.Visits); i++ {
			vals = append(vals, float64(j.Visits[i].Start.Sub(j.Visits[i-1].Start))/float64(time.Millisecond))
		}
		if len(vals) < 2 {
			return "", nil
		}
		return s.histogram(dir, "gaps", j.Name, j.Name+": gaps between starts at the origin", "milliseconds", vals,
			float64(j.Delay)/float64(time.Millisecond))
	})
}

// waits charts how long the crawlers' requests took (waiting for the turn included).
func (s *reportSection) waits(what string, rs []result) {
	s.charts = append(s.charts, func(dir string) (string, error) {
		var vals plotter.Values
		for _, r := range rs {
			vals = append(vals, r.Seconds*1000)
		}
		if len(vals) < 2 {
			return "", nil
		}
		return s.histogram(dir, "waits", what, "request time as the crawler saw it (the turn's wait included)", "milliseconds", vals, -1)
	})
}

// timeline charts the crawlers' answers per 250 ms: successes and failures.
func (s *reportSection) timeline(what string, rs []result, marks map[string]time.Time) {
	s.charts = append(s.charts, func(dir string) (string, error) {
		if len(rs) == 0 {
			return "", nil
		}
		t0 := time.Unix(0, slices.MinFunc(rs, func(a, b result) int { return int(a.Start - b.Start) }).Start)
		ok, bad := map[int]float64{}, map[int]float64{}
		last := 0
		for _, r := range rs {
			b := int(time.Unix(0, r.Start).Sub(t0) / (250 * time.Millisecond))
			last = max(last, b)
			if r.Status > 0 && r.Status < 500 {
				ok[b]++
			} else {
				bad[b]++
			}
		}
		var okPts, badPts plotter.XYs
		top := 1.0
		for b := 0; b <= last; b++ {
			okPts = append(okPts, plotter.XY{X: float64(b) / 4, Y: ok[b] * 4})
			badPts = append(badPts, plotter.XY{X: float64(b) / 4, Y: bad[b] * 4})
			top = max(top, ok[b]*4, bad[b]*4)
		}
		p := plot.New()
		p.Title.Text = what + ": crawler answers per second"
		p.X.Label.Text, p.Y.Label.Text = "seconds", "answers/s"
		lo, err := plotter.NewLine(okPts)
		if err != nil {
			return "", err
		}
		lb, err := plotter.NewLine(badPts)
		if err != nil {
			return "", err
		}
		lb.Color = color.RGBA{R: 200, A: 255}
		p.Add(lo, lb)
		p.Legend.Add("2xx-4xx", lo)
		p.Legend.Add("5xx or error", lb)
		for label, at := range marks {
			x := at.Sub(t0).Seconds()
			m, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top}}) // across the chart
			if err != nil {
				return "", err
			}
			m.Color, m.Dashes = color.Gray{Y: 120}, []vg.Length{vg.Points(2), vg.Points(2)}
			p.Add(m)
			p.Legend.Add(label, m)
		}
		name := s.file("timeline", what)
		return name, p.Save(7*vg.Inch, 2.5*vg.Inch, filepath.Join(dir, name))
	})
}

func (s *reportSection) histogram(dir, kind, what, title, unit string, vals plotter.Values, mark float64) (string, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = unit, "count"
	h, err := plotter.NewHist(vals, 40)
	if err != nil {
		return "", err
	}
	p.Add(h)
	if mark >= 0 {
		_, maxY := 0.0, 0.0
		for _, b := range h.Bins {
			maxY = max(maxY, b.Weight)
		}
		m, err := plotter.NewLine(plotter.XYs{{X: mark, Y: 0}, {X: mark, Y: maxY}})
		if err != nil {
			return "", err
		}
		m.Color, m.Dashes = color.RGBA{R: 200, A: 255}, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(m)
		p.Legend.Add("delay", m)
	}
	name := s.file(kind, what)
	return name, p.Save(7*vg.Inch, 2.5*vg.Inch, filepath.Join(dir, name))
}

// writeReport writes report.md and the charts; it runs after every test.
func writeReport() error {
	dir := os.Getenv("E2E_REPORT_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "crawlpolite-e2e-report"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	form := "short form (make test)"
	if full() {
		form = "full form (make e2e)"
	}
	fmt.Fprintf(&b, "# crawlpolite end-to-end report\n\n%s, %s\n\n", time.Now().UTC().Format(time.RFC3339), form)
	fmt.Fprintf(&b, "| scenario | verdict |\n|---|---|\n")
	for _, s := range sections {
		fmt.Fprintf(&b, "| %s | %s |\n", s.Name, map[bool]string{true: "pass", false: "FAIL"}[s.Passed])
	}
	for _, s := range sections {
		fmt.Fprintf(&b, "\n## %s: %s\n\n%s\n\n", s.Name, map[bool]string{true: "pass", false: "FAIL"}[s.Passed], s.Desc)
		for _, r := range s.Rows {
			fmt.Fprintf(&b, "- **%s**: %s\n", r[0], r[1])
		}
		for _, c := range s.charts {
			name, err := c(dir)
			if err != nil {
				return fmt.Errorf("%s: chart: %w", s.Name, err)
			}
			if name != "" {
				fmt.Fprintf(&b, "\n![%s](%s)\n", name, name)
			}
		}
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.String()), 0o644)
}

// rateLine is one series of a rates chart: a count for each second.
type rateLine struct {
	Name   string
	PerSec []float64
	Color  color.Color
	Dashed bool
}

// mark is a labelled instant on a chart, drawn as a vertical line across it.
type mark struct {
	Name  string
	At    time.Time
	Color color.Color
}

// rates charts counts per second from t0 (steps, one per second) with marks.
func (s *reportSection) rates(what, title string, t0 time.Time, lines []rateLine, marks []mark) {
	s.charts = append(s.charts, func(dir string) (string, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text, p.Y.Label.Text = "seconds", "per second"
		top := 1.0
		for _, l := range lines {
			var pts plotter.XYs
			for i, v := range l.PerSec {
				pts = append(pts, plotter.XY{X: float64(i), Y: v}, plotter.XY{X: float64(i + 1), Y: v})
				top = max(top, v)
			}
			if len(pts) == 0 {
				continue
			}
			ln, err := plotter.NewLine(pts)
			if err != nil {
				return "", err
			}
			ln.Color = l.Color
			if l.Dashed {
				ln.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(ln)
			p.Legend.Add(l.Name, ln)
		}
		for _, m := range marks {
			x := m.At.Sub(t0).Seconds()
			ml, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top * 1.1}})
			if err != nil {
				return "", err
			}
			ml.Color, ml.Dashes = m.Color, []vg.Length{vg.Points(2), vg.Points(2)}
			p.Add(ml)
			p.Legend.Add(fmt.Sprintf("%s (%.1f s)", m.Name, x), ml)
		}
		// Room above the lines for the legend.
		p.Y.Min, p.Y.Max = 0, top*1.8
		p.Legend.Top = true
		name := s.file("rates", what)
		return name, p.Save(7*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, name))
	})
}
