//! Line plots as hand-written SVG (no plotting dependency): the metric against a numeric column
//! (k, augmentation strength), one line per combination of the other keys, ± std as error bars.

use super::table::{Table, is_fraction};

const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
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
        let points: Vec<(f64, f64, f64)> = xs
            .iter()
            .zip(&table.cells[r])
            .filter_map(|(x, cell)| Some((x.as_ref().copied()?, cell.as_ref()?.mean * scale, cell.as_ref()?.std.unwrap_or(0.0) * scale)))
            .collect();
        if !points.is_empty() {
            series.push((key.join(" "), points));
        }
    }
    let (x0, x1) = distinct.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let ys = series.iter().flat_map(|(_, p)| p.iter().flat_map(|&(_, y, s)| [y - s, y + s]));
    let (mut y0, mut y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    if y1 - y0 < 1e-9 {
        y0 -= 1.0;
        y1 += 1.0;
    }
    let pad = (y1 - y0) * 0.08;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 230.0, 30.0, 50.0);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| top + (y1 - y) / (y1 - y0) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let (ax0, ax1, ay0, ay1) = (left, w - right, top, h - bottom);
    s.push_str(&format!("<path d=\"M{ax0},{ay0} V{ay1} H{ax1}\" stroke=\"black\" fill=\"none\"/>\n"));
    for i in 0..=5 {
        let y = y0 + (y1 - y0) * i as f64 / 5.0;
        s.push_str(&format!(
            "<line x1=\"{ax0}\" x2=\"{ax1}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\">{y:.1}</text>\n",
            py(y),
            ax0 - 6.0,
            py(y) + 4.0
        ));
    }
    for &x in &distinct {
        s.push_str(&format!("<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(x), ay1 + 18.0, esc(&format!("{x}"))));
    }
    let unit = if scale == 100.0 { " (%)" } else { "" };
    s.push_str(&format!("<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (ax0 + ax1) / 2.0, h - 10.0, esc(x_label)));
    s.push_str(&format!(
        "<text transform=\"translate(16,{:.1}) rotate(-90)\" text-anchor=\"middle\">{}{unit}</text>\n",
        (ay0 + ay1) / 2.0,
        esc(&table.query.metric)
    ));
    for (i, (label, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points.iter().map(|&(x, y, _)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        s.push_str(&format!("<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>\n", path.join(" ")));
        for &(x, y, sd) in points {
            if sd > 0.0 {
                s.push_str(&format!("<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"{color}\"/>\n", px(x), py(y - sd), py(y + sd)));
            }
            s.push_str(&format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>\n", px(x), py(y)));
        }
        let ly = top + 16.0 * i as f64;
        s.push_str(&format!(
            "<line x1=\"{0}\" x2=\"{1}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/><text x=\"{2}\" y=\"{3}\">{4}</text>\n",
            ax1 + 15.0,
            ax1 + 35.0,
            ax1 + 40.0,
            ly + 4.0,
            esc(label)
        ));
    }
    s.push_str("</svg>\n");
    Some(s)
}
