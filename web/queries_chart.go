package web

import (
	"fmt"
	"math"
	"strings"

	"github.com/ctid/ctid/query"
)

// chartData is a small SVG chart of a grouped result (bar or line), drawn on the server: no
// script, no CDN.
type chartData struct {
	Kind          string
	Width, Height int
	Series        []chartSeries
	Labels        []chartLabel
	Max           string
}

type chartSeries struct {
	Name   string
	Color  string
	Bars   []chartBar
	Points string // polyline points for a line chart
}

type chartBar struct {
	X, Y, W, H float64
	Title      string
}

type chartLabel struct {
	X    float64
	Text string
}

const (
	chartWidth  = 900
	chartHeight = 220
	chartBottom = 20 // room for labels
)

var chartColors = []string{"#1f6feb", "#e8590c", "#2f9e44", "#ae3ec9"}

func chartOf(d *query.Definition, res *query.Result, env *query.Env, lang string) *chartData {
	if d.Chart == nil || len(res.Rows) == 0 {
		return nil
	}
	idx := map[string]int{}
	for i, c := range res.Columns {
		idx[c.Key] = i
	}
	xi, ok := idx[d.Chart.X]
	if !ok {
		return nil
	}
	n := len(res.Rows)
	ch := &chartData{Kind: d.Chart.Kind, Width: chartWidth, Height: chartHeight + chartBottom}
	maxV := 0.0
	values := make([][]float64, len(d.Chart.Y))
	for s, key := range d.Chart.Y {
		yi, ok := idx[key]
		if !ok {
			return nil
		}
		for _, row := range res.Rows {
			f, _ := toNumber(row[yi])
			values[s] = append(values[s], f)
			maxV = math.Max(maxV, f)
		}
	}
	if maxV <= 0 {
		maxV = 1
	}
	slot := float64(chartWidth) / float64(n)
	for s, key := range d.Chart.Y {
		col := res.Columns[idx[key]]
		ser := chartSeries{Name: col.Label.In(lang), Color: chartColors[s%len(chartColors)]}
		var pts []string
		barW := slot * 0.8 / float64(len(d.Chart.Y))
		for i, v := range values[s] {
			h := v / maxV * chartHeight
			x := float64(i)*slot + slot*0.1 + float64(s)*barW
			ser.Bars = append(ser.Bars, chartBar{X: x, Y: chartHeight - h, W: barW, H: h,
				Title: query.Format(res.Columns[xi], res.Rows[i][xi], env) + ": " + query.Format(col, res.Rows[i][idx[key]], env)})
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(i)*slot+slot/2, chartHeight-h))
		}
		ser.Points = strings.Join(pts, " ")
		ch.Series = append(ch.Series, ser)
	}
	every := max(1, n/12) // at most about a dozen labels
	for i := 0; i < n; i += every {
		ch.Labels = append(ch.Labels, chartLabel{X: float64(i)*slot + slot/2, Text: query.Format(res.Columns[xi], res.Rows[i][xi], env)})
	}
	ch.Max = query.Format(res.Columns[idx[d.Chart.Y[0]]], maxV, env)
	return ch
}

func toNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
