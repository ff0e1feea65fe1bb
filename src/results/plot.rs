//! Line plots as hand-written SVG (no plotting dependency): the metric against a numeric column
//! (k, augmentation strength), one line per combination of the other keys with ± std error bars;
//! and learning curves, one panel per table row, one line per column key with its min–max band.

use super::curves::{Curves, axis_label, is_fraction_list};
use super::render::key_title;
use super::table::{Layout, Rows, Table, TableQuery, is_fraction, tabulate};
use anyhow::Result;
use std::fmt::Write;

/// The numeric columns plotted against, and their file names under `--plots`.
pub const AGAINST: [(&str, &str); 2] = [("k", "accuracy-vs-k.svg"), ("strength", "accuracy-vs-strength.svg")];

/// The keys that make one line of a plot against `x`: every table key but `x` itself (and the
/// augmentation label, which holds the strength).
pub fn series_keys(x: &str) -> Vec<String> {
    ["dataset", "method", "prior", "augmentation"].into_iter().filter(|c| *c != x && !(x == "strength" && *c == "augmentation")).map(String::from).collect()
}

/// The plots of `query.metric` against each of `AGAINST` (None where the rows have fewer than
/// two values of it); `rows` must hold the series keys, the x columns and the metric. `on_page`:
/// for the HTML page, which says once what its figures hold fixed (a standalone SVG says it in
/// its own `<desc>`).
pub fn against(rows: &Rows, query: &TableQuery, on_page: bool) -> Result<Vec<(&'static str, Option<String>)>> {
    let mut out = Vec::new();
    for (x, _) in AGAINST {
        // A filter on the x axis itself (`--where k=5` for the table) would leave one point.
        let filters = query.filters.iter().filter(|(column, _)| column != x).cloned().collect();
        let q = TableQuery { rows: series_keys(x), cols: vec![x.to_string()], filters, split: Vec::new(), ..query.clone() };
        let mut table = tabulate(rows, &q)?;
        if on_page {
            table.layout.fixed.clear();
        }
        out.push((x, svg(&table, x)));
    }
    Ok(out)
}

const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const FONT: &str = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\"";

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Round tick positions covering [lo, hi]: steps of 1, 2, 2.5 or 5 times a power of ten.
fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = (hi - lo).max(1e-12);
    let raw = span / target.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    ((first..=last).map(|i| i as f64 * step).collect(), step)
}

/// A tick label with as many decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let exact = |d: i32| {
        let scaled = step * 10f64.powi(d);
        (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
    };
    let decimals = (0..=8).find(|&d| exact(d)).unwrap_or(8) as usize;
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// A plotting area: data ranges mapped to a pixel rectangle.
struct Axes {
    x: (f64, f64),
    y: (f64, f64),
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Axes {
    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x.0) / (self.x.1 - self.x.0) * self.width
    }

    fn py(&self, y: f64) -> f64 {
        self.top + (self.y.1 - y) / (self.y.1 - self.y.0) * self.height
    }

    /// The frame, horizontal grid lines, tick labels and axis titles. `x_ticks`: where to put x
    /// labels (None: round numbers).
    fn draw(&self, s: &mut String, x_ticks: Option<&[f64]>, x_label: &str, y_label: &str) {
        let (l, r, t, b) = (self.left, self.left + self.width, self.top, self.top + self.height);
        let (yt, ystep) = nice_ticks(self.y.0, self.y.1, 5);
        for y in yt {
            let _ = writeln!(
                s,
                "<line x1=\"{l}\" x2=\"{r}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#e3e3e3\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\">{3}</text>",
                self.py(y),
                l - 6.0,
                self.py(y) + 4.0,
                tick_label(y, ystep)
            );
        }
        let (xt, xstep) = match x_ticks {
            Some(v) => (v.to_vec(), v.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min)),
            None => nice_ticks(self.x.0, self.x.1, 6),
        };
        for x in xt {
            let label = if x_ticks.is_some() { format!("{x}") } else { tick_label(x, xstep) };
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{b}\" y2=\"{1}\" stroke=\"black\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>",
                self.px(x),
                b + 4.0,
                b + 17.0,
                esc(&label)
            );
        }
        let _ = writeln!(s, "<path d=\"M{l},{t} V{b} H{r}\" stroke=\"black\" fill=\"none\"/>");
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>", (l + r) / 2.0, b + 34.0, esc(x_label));
        let _ = writeln!(s, "<text transform=\"translate({:.1},{:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>", l - 46.0, (t + b) / 2.0, esc(y_label));
    }
}

/// (lo, hi) of `values` padded by 8% (and widened when flat).
fn padded_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return None;
    }
    if hi - lo < 1e-9 {
        lo -= 1.0_f64.max(lo.abs() * 0.05);
        hi += 1.0_f64.max(hi.abs() * 0.05);
    }
    let pad = (hi - lo) * 0.08;
    Some((lo - pad, hi + pad))
}

fn svg_open(w: f64, h: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" {FONT} role=\"img\" aria-label=\"{0}\">\n<title>{0}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        esc(title)
    )
}

/// What the plotted cells hold fixed and what splits them: the split in small type under the
/// title (it changes what a line means), everything in the figure's `<desc>`.
fn notes(s: &mut String, layout: &Layout, x: f64, y: f64) {
    if let Some(note) = super::render::split_note(layout) {
        let _ = writeln!(s, "<text x=\"{x}\" y=\"{y}\" font-size=\"10\" fill=\"#a33\">{}</text>", esc(&note));
    }
    let all = super::render::layout_notes(layout);
    if !all.is_empty() {
        let _ = writeln!(s, "<desc>{}</desc>", esc(&all.join(". ")));
    }
}

/// A legend entry: a coloured line and its label.
fn legend_entry(s: &mut String, x: f64, y: f64, color: &str, label: &str) {
    let _ = writeln!(
        s,
        "<line x1=\"{x}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">{}</text>",
        x + 22.0,
        x + 28.0,
        y + 4.0,
        esc(label)
    );
}

/// `table` must have exactly one column key, numeric (the x axis); rows are the series.
/// Returns None when fewer than two distinct x values exist (nothing to plot against).
pub fn svg(table: &Table, x_label: &str) -> Option<String> {
    let xs: Vec<Option<f64>> = table.col_keys.iter().map(|k| k.first().and_then(|v| v.parse().ok())).collect();
    let distinct: Vec<f64> = xs.iter().flatten().copied().collect();
    if distinct.len() < 2 {
        return None;
    }
    let scale = if is_fraction(&table.query.metric) { 100.0 } else { 1.0 };
    let mut series = Vec::new();
    for (r, key) in table.row_keys.iter().enumerate() {
        let points: Vec<(f64, f64, f64, usize)> = xs
            .iter()
            .zip(&table.cells[r])
            .filter_map(|(x, cell)| {
                let cell = cell.as_ref()?;
                Some((x.as_ref().copied()?, cell.mean * scale, cell.std.unwrap_or(0.0) * scale, cell.n))
            })
            .collect();
        if !points.is_empty() {
            let ns: Vec<usize> = points.iter().map(|p| p.3).collect();
            let n =
                if ns.iter().all(|&n| n == ns[0]) { format!("n={}", ns[0]) } else { format!("n={}–{}", ns.iter().min().unwrap(), ns.iter().max().unwrap()) };
            series.push((format!("{} ({n})", super::render::row_title(&table.query, key)), points));
        }
    }
    let (x0, x1) = distinct.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let (y0, y1) = padded_range(series.iter().flat_map(|(_, p)| p.iter().flat_map(|&(_, y, s, _)| [y - s, y + s])))?;
    let (w, h) = (760.0, 440.0);
    let axes = Axes { x: (x0, x1), y: (y0, y1), left: 80.0, top: 40.0, width: w - 80.0 - 250.0, height: h - 40.0 - 60.0 };
    let unit = if scale == 100.0 { " (%)" } else { "" };
    let title = format!("{} against {x_label} (mean ± std over seeds)", table.query.metric);
    let mut s = svg_open(w, h, &title);
    let _ = writeln!(s, "<text x=\"{}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>", axes.left, esc(&title));
    notes(&mut s, &table.layout, axes.left, 36.0);
    axes.draw(&mut s, Some(&distinct), x_label, &format!("{}{unit}", table.query.metric));
    for (i, (label, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points.iter().map(|&(x, y, _, _)| format!("{:.1},{:.1}", axes.px(x), axes.py(y))).collect();
        let _ = writeln!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>", path.join(" "));
        for &(x, y, sd, _) in points {
            if sd > 0.0 {
                let _ = writeln!(
                    s,
                    "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"{color}\"/>",
                    axes.px(x),
                    axes.py(y - sd),
                    axes.py(y + sd)
                );
            }
            let _ = writeln!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>", axes.px(x), axes.py(y));
        }
        legend_entry(&mut s, axes.left + axes.width + 20.0, axes.top + 18.0 * i as f64, color, label);
    }
    s.push_str("</svg>\n");
    Some(s)
}

/// An SVG points list (`x,y x,y ...`, tenths of a pixel), written straight into `s`: a report's
/// curves hold hundreds of thousands of points, and a `String` per point, then `write!` per
/// number, was most of their time; the digits are written by hand.
fn push_points(s: &mut String, points: impl Iterator<Item = (f64, f64)>) {
    fn tenths(s: &mut String, v: f64) {
        let t = (v * 10.0).round() as i64;
        if t < 0 {
            s.push('-');
        }
        let t = t.unsigned_abs();
        let mut digits = [0u8; 20];
        let (mut whole, mut at) = (t / 10, digits.len());
        loop {
            at -= 1;
            digits[at] = b'0' + (whole % 10) as u8;
            whole /= 10;
            if whole == 0 {
                break;
            }
        }
        s.extend(digits[at..].iter().map(|&d| d as char));
        s.push('.');
        s.push((b'0' + (t % 10) as u8) as char);
    }
    for (i, (x, y)) in points.enumerate() {
        if i > 0 {
            s.push(' ');
        }
        tenths(s, x);
        s.push(',');
        tenths(s, y);
    }
}

/// Learning curves: one panel per table row (shared axes), one line per column key in the same
/// colour in every panel, the mean over runs with a shaded min–max band. None when no run has a
/// value.
pub fn curves_svg(curves: &Curves) -> Option<String> {
    let scale = if is_fraction_list(&curves.column) { 100.0 } else { 1.0 };
    let all = curves.panels.iter().flat_map(|p| &p.curves).flat_map(|c| &c.points);
    let (y0, y1) = padded_range(all.clone().flat_map(|p| [p.min * scale, p.max * scale]))?;
    let max_epoch = all.map(|p| p.epoch).max()?;
    let (x0, x1) = (if max_epoch > 1 { 1.0 } else { 0.0 }, max_epoch.max(2) as f64);
    let columns = if curves.panels.len() > 1 { 2 } else { 1 };
    let (pw, ph) = if columns == 1 { (760.0, 380.0) } else { (565.0, 360.0) };
    let labels: Vec<String> = curves.col_keys.iter().map(|k| key_title(&curves.query.cols, k)).collect();
    // The legend: entries in rows across the width.
    let w = pw * columns as f64 + 20.0;
    let mut legend_rows: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
    let mut x = 20.0;
    for (i, label) in labels.iter().enumerate() {
        let width = 40.0 + 7.0 * label.chars().count() as f64;
        if x + width > w - 10.0 && !legend_rows.last().unwrap().is_empty() {
            legend_rows.push(Vec::new());
            x = 20.0;
        }
        legend_rows.last_mut().unwrap().push((i, x));
        x += width;
    }
    let head = 40.0 + 20.0 * legend_rows.len() as f64;
    let rows = curves.panels.len().div_ceil(columns);
    let h = head + ph * rows as f64;
    let title = format!("{} per epoch ({}): mean over runs, band from min to max", axis_label(&curves.column), curves.column);
    let mut s = svg_open(w, h, &title);
    let _ = writeln!(s, "<text x=\"20\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>", esc(&title));
    notes(&mut s, &curves.layout, 20.0, 36.0);
    for (r, entries) in legend_rows.iter().enumerate() {
        for &(i, x) in entries {
            legend_entry(&mut s, x, 42.0 + 20.0 * r as f64, COLORS[i % COLORS.len()], &labels[i]);
        }
    }
    for (p, panel) in curves.panels.iter().enumerate() {
        let (ox, oy) = (10.0 + pw * (p % columns) as f64, head + ph * (p / columns) as f64);
        let axes = Axes { x: (x0, x1), y: (y0, y1), left: ox + 75.0, top: oy + 30.0, width: pw - 95.0, height: ph - 30.0 - 60.0 };
        let runs: Vec<String> = panel.curves.iter().map(|c| c.runs.to_string()).collect();
        let n = if runs.iter().all(|n| *n == runs[0]) { format!("n={} per line", runs[0]) } else { format!("n={} (legend order)", runs.join("/")) };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{} <tspan font-weight=\"normal\">({n})</tspan></text>",
            axes.left,
            oy + 18.0,
            esc(&super::render::row_title(&curves.query, &panel.row_key))
        );
        axes.draw(&mut s, None, "epoch", axis_label(&curves.column));
        for curve in &panel.curves {
            let i = curves.col_keys.iter().position(|k| *k == curve.col_key).unwrap_or(0);
            let color = COLORS[i % COLORS.len()];
            let pts = &curve.points;
            if pts.iter().any(|p| p.max > p.min) {
                s.push_str("<polygon points=\"");
                let upper = pts.iter().map(|p| (axes.px(p.epoch as f64), axes.py(p.max * scale)));
                let lower = pts.iter().rev().map(|p| (axes.px(p.epoch as f64), axes.py(p.min * scale)));
                push_points(&mut s, upper.chain(lower));
                let _ = writeln!(s, "\" fill=\"{color}\" fill-opacity=\"0.18\" stroke=\"none\"/>");
            }
            s.push_str("<polyline points=\"");
            push_points(&mut s, pts.iter().map(|p| (axes.px(p.epoch as f64), axes.py(p.mean * scale))));
            let _ = writeln!(s, "\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>");
            if pts.len() <= 40 {
                for p in pts {
                    let _ = writeln!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>", axes.px(p.epoch as f64), axes.py(p.mean * scale));
                }
            }
        }
    }
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_written_in_tenths_of_a_pixel() {
        let mut s = String::new();
        push_points(&mut s, [(12.34, -0.26), (0.04, 3.0), (-7.96, 100.05)].into_iter());
        assert_eq!(s, "12.3,-0.3 0.0,3.0 -8.0,100.1");
        let mut one = String::new();
        push_points(&mut one, std::iter::once((1.0, 2.0)));
        assert_eq!(one, "1.0,2.0");
        let mut wide = String::new();
        push_points(&mut wide, [(123456.78, -0.04), (-1234.5, f64::NAN)].into_iter());
        assert_eq!(wide, "123456.8,0.0 -1234.5,0.0");
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(nice_ticks(0.0, 10.0, 5).0, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(33.7, 51.2, 5).0, vec![35.0, 40.0, 45.0, 50.0]);
        let (t, step) = nice_ticks(0.11, 0.20, 4);
        assert_eq!(step, 0.025);
        assert_eq!(t.iter().map(|v| tick_label(*v, step)).collect::<Vec<_>>(), vec!["0.125", "0.150", "0.175", "0.200"]);
        assert_eq!(tick_label(-0.0, 0.5), "0.0");
        assert_eq!(tick_label(7.5, 2.5), "7.5");
        assert_eq!(tick_label(40.0, 5.0), "40");
    }
}
